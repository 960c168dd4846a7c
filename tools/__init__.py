"""Scripts behind bin/: the post-deploy smoke test and the cdk diff guard."""
