"""The hosted web client: web/ in a private S3 bucket, served by CloudFront over HTTPS only.

A nested stack of ChatStack (construct id `Web`, context `hostWebClient`): `Bucket`,
`Distribution` (with the `Headers` policy), `Deploy*` and `Logs`. What each does and why:
docs/operations.md, "Hosted web client"; its checks: docs/security.md.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Aws, CfnElement, CfnResource, Duration, NestedStack, RemovalPolicy
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.config import RETENTION_DAYS, SignInConfig
from infra.nag import acknowledge, review_outside_nag

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# What in web/ the browser never loads (CDK asset globs, matched at any depth): the
# client's Node.js unit tests, its README, package.json (it only tells `node --test` that
# the .js files are ES modules) and hidden files (editor and OS litter).
WEB_EXCLUDE = ("tests", "README.md", "package.json", ".*")
# Content-Type by file extension, for every file that is shipped. A file of any other
# type in web/ fails the synth until it is added here or to WEB_EXCLUDE.
CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The endpoint document the client fetches (web/js/endpoint.js), as the sandbox serves it.
ENDPOINT_KEY = "get-ws-endpoint"
# What the page asks the issuer for: an ID token (the authorizer accepts nothing else).
SIGN_IN_SCOPE = "openid"
ENDPOINT_CONTENT_TYPE = "application/json"
CACHE_CONTROL = "no-cache"
INDEX = "index.html"
HSTS_MAX_AGE = Duration.days(365)
# CloudFront names are unique in the account and at most 64 characters (origin access
# control): `<stack name>-web-<region>`, the stack name shortened past NAME_ROOM.
NAME_ROOM = 40
# The construct id aws-cdk-lib gives the one auto-delete provider of a stack (s3.Bucket's
# `autoDeleteObjects`), a sibling of the buckets.
AUTO_DELETE_PROVIDER = "Custom::S3AutoDeleteObjectsCustomResourceProvider"


def web_files(web_dir: Path = WEB_DIR) -> dict[str, str]:
    """The files of `web_dir` that are deployed: relative POSIX path → Content-Type.

    Raises ValueError for a file that is neither excluded nor of a known type.
    """
    shipped: dict[str, str] = {}
    for root, dirs, files in os.walk(web_dir):
        dirs[:] = sorted(d for d in dirs if not _excluded(d))
        for name in sorted(files):
            if _excluded(name):
                continue
            path = Path(root, name).relative_to(web_dir).as_posix()
            content_type = CONTENT_TYPES.get(Path(name).suffix.lower())
            if content_type is None:
                raise ValueError(
                    f"web/{path}: no Content-Type for its extension; add it to CONTENT_TYPES "
                    "or WEB_EXCLUDE in infra/hosting.py"
                )
            shipped[path] = content_type
    return dict(sorted(shipped.items()))


def _excluded(name: str) -> bool:
    return name.startswith(".") or name in WEB_EXCLUDE


def endpoint_document(endpoint: str, sign_in: SignInConfig | None = None) -> dict[str, object]:
    """`GET /get-ws-endpoint`: where the page connects and, with sign-in, how it signs in.

    `endpoint` stays as it always was, so older pages keep working. `signIn` is what
    web/js/signin.js needs for OpenID Connect's code flow with PKCE as a public client:
    the issuer (its discovery document names the authorization and token endpoints), the
    client id (an ID token's `aud`, so the authorizer's audience), where the token goes on
    the WebSocket (`signInTokenSource`), the scope, and the claim that gives the name.
    """
    document: dict[str, object] = {"endpoint": endpoint}
    if sign_in is not None:
        document["signIn"] = {
            "issuer": sign_in.issuer,
            "clientId": sign_in.client_id,
            "tokenSource": sign_in.token_source,
            "scope": SIGN_IN_SCOPE,
            "nameClaim": sign_in.name_claim,
        }
    return document


def sign_in_sources(sign_in: SignInConfig | None) -> list[str]:
    """The sign-in fetches the page makes: the issuer's discovery document (the issuer's
    path and below) and the token endpoint (the domain's origin). The sign-in page itself
    is a navigation, which connect-src does not govern."""
    if sign_in is None:
        return []
    sources = [sign_in.issuer.rstrip("/") + "/", sign_in.domain or sign_in.issuer]
    return list(dict.fromkeys(sources))


def content_security_policy(endpoint: str, sign_in: SignInConfig | None = None) -> str:
    """The page's CSP: its own files only, and WebSockets to `endpoint` (the stage URL) only.

    `connect-src` keeps 'self' for the page's `GET /get-ws-endpoint`: once connect-src is
    set, fetch obeys it instead of default-src. With sign-in it also allows the issuer's
    discovery document and its token endpoint (sign_in_sources).
    """
    connect = " ".join(["'self'", endpoint, *sign_in_sources(sign_in)])
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


def retention_days(retention: logs.RetentionDays) -> int:
    """The number of days of a CloudWatch retention (for the log bucket's expiry)."""
    return next(days for days, value in RETENTION_DAYS.items() if value == retention)


def cloudfront_name(stack_name: str) -> str:
    """`<stack name>-web-<region>`: CloudFront's names are global to the account, so the
    same stack in two regions needs two. A stack name past NAME_ROOM is cut and hashed."""
    if len(stack_name) > NAME_ROOM:
        digest = hashlib.sha256(stack_name.encode()).hexdigest()[:8]
        stack_name = f"{stack_name[: NAME_ROOM - 9]}-{digest}"
    return f"{stack_name}-web-{Aws.REGION}"


class WebHosting(NestedStack):
    """The web client on CloudFront; `origin` is the page's origin, `https://<domain>`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        endpoint: str,
        removal_policy: RemovalPolicy,
        log_removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        web_dir: Path = WEB_DIR,
        sign_in: SignInConfig | None = None,
        auto_delete_buckets: bool = False,
    ) -> None:
        super().__init__(scope, construct_id, description=f"{name}: the hosted web client")
        self.files = web_files(web_dir)
        self.endpoint = endpoint
        self.sign_in = sign_in
        self.logs = s3.Bucket(
            self,
            "Logs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            # CloudFront's standard logs are written by AWS's log delivery account under an
            # ACL grant, so this bucket (and only this one) keeps ACLs: ObjectWriter.
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(retention_days(log_retention)))
            ],
            removal_policy=bucket_removal(log_removal_policy, auto_delete_buckets),
            auto_delete_objects=auto_delete(log_removal_policy, auto_delete_buckets),
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="s3/",
            removal_policy=bucket_removal(removal_policy, auto_delete_buckets),
            auto_delete_objects=auto_delete(removal_policy, auto_delete_buckets),
        )
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            response_headers_policy_name=cloudfront_name(name),
            comment=f"{name}: security headers of the web client",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(endpoint, sign_in),
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
            ),
        )
        access_control = cloudfront.S3OriginAccessControl(
            self,
            "OriginAccessControl",
            origin_access_control_name=cloudfront_name(name),
            description=f"{name}: CloudFront reads the web client's bucket",
            signing=cloudfront.Signing.SIGV4_ALWAYS,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{name}: web client",
            default_root_object=INDEX,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(
                    self.bucket, origin_access_control=access_control
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        self.deployments = self._deploy(web_dir, log_removal_policy, log_retention)
        self._acknowledge()
        self._review_auto_delete()

    def _deploy(
        self, web_dir: Path, log_removal_policy: RemovalPolicy, log_retention: logs.RetentionDays
    ) -> dict[str, s3deploy.BucketDeployment]:
        """One BucketDeployment per content type, each syncing (and pruning) only its files.

        They share one handler with its own role: CDK's grants (s3:GetObject*, s3:List*,
        s3:DeleteObject*, s3:Abort*… on whole buckets) are replaced by exactly what
        `aws s3 sync` needs: read the source zips, list the bucket, put and delete objects.
        """
        log_group = logs.LogGroup(
            self, "DeployLogs", retention=log_retention, removal_policy=log_removal_policy
        )
        self.deploy_role = iam.Role(
            self,
            "DeployRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Deploys the web client: its source zips, its bucket, its log group",
        )
        log_group.grant_write(self.deploy_role)
        role = self.deploy_role.without_policy_updates()
        site = s3_assets.Asset(self, "Site", path=str(web_dir), exclude=list(WEB_EXCLUDE))
        groups: dict[str, tuple[s3deploy.ISource, list[str]]] = {}
        for content_type in sorted(set(self.files.values())):
            extensions = sorted(e for e, t in CONTENT_TYPES.items() if t == content_type)
            source = s3deploy.Source.bucket(site.bucket, site.s3_object_key)
            groups[content_type] = (source, [f"*{extension}" for extension in extensions])
        endpoint = s3deploy.Source.json_data(
            ENDPOINT_KEY, endpoint_document(self.endpoint, self.sign_in)
        )
        groups[ENDPOINT_CONTENT_TYPE] = (endpoint, [ENDPOINT_KEY])
        deployments: dict[str, s3deploy.BucketDeployment] = {}
        for content_type, (source, include) in groups.items():
            kind = content_type.split(";")[0].split("/")[1].capitalize()
            deployment = s3deploy.BucketDeployment(
                self,
                f"Deploy{kind}",
                sources=[source],
                destination_bucket=self.bucket,
                exclude=["*"],
                include=include,
                content_type=content_type,
                cache_control=[s3deploy.CacheControl.from_string(CACHE_CONTROL)],
                prune=True,
                role=role,
                log_group=log_group,
            )
            # The role's policy must exist before CloudFormation runs the handler.
            deployment.node.add_dependency(self.deploy_role)
            if deployments:
                # Each BucketDeployment adds an AWS CLI layer, but the handler they share
                # (a singleton) only uses the first one's: drop the unused copies.
                deployment.node.try_remove_child("AwsCliLayer")
            deployments[content_type] = deployment
        # The source zips: the site's, and the endpoint document's (a child of its deployment).
        zips = [site] + [
            asset
            for deployment in deployments.values()
            for asset in deployment.node.children
            if isinstance(asset, s3_assets.Asset)
        ]
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[z.bucket.arn_for_objects(z.s3_object_key) for z in zips],
            )
        )
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn])
        )
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:DeleteObject"],
                resources=[self.bucket.arn_for_objects("*")],
            )
        )
        return deployments

    def _acknowledge(self) -> None:
        """The findings cdk-nag keeps on these resources, each with why it does not apply."""
        distribution = _resource(self.distribution)
        acknowledge(
            distribution,
            "AwsSolutions-CFR1",
            "one public chat room for anyone, anywhere: there is no country to keep out, and "
            "the page is static files; the chat's abuse limits live on the WebSocket API",
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR2",
            "the distribution serves a handful of static, public files (no forms, no server "
            "code), which a web ACL would not protect further than CloudFront and Shield "
            "Standard do; the chat traffic goes to API Gateway, and WAF cannot be attached to "
            "WebSocket APIs",
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR4",
            "the page is served on the distribution's cloudfront.net name with CloudFront's "
            "default certificate, whose TLS policy AWS sets; a stricter minimum (TLSv1.2_2021) "
            "needs a custom domain with an ACM certificate. Browsers have refused TLS 1.0 and "
            "1.1 since 2020, and HSTS keeps them on HTTPS",
        )
        handler = next(
            child
            for child in self.node.children
            if isinstance(child, lambda_.Function)
            and child.node.id.startswith("Custom::CDKBucketDeployment")
        )
        function = _resource(handler)
        runtime = (
            "aws-cdk-lib's BucketDeployment handler sets its own runtime (python3.13), the one "
            "it and its AWS CLI layer are built for; an aws-cdk-lib upgrade moves it. It runs "
            "only while CloudFormation deploys the web client"
        )
        acknowledge(function, "AwsSolutions-L1", runtime)
        acknowledge(function, "Serverless-LambdaLatestVersion", runtime)
        acknowledge(
            function,
            "Serverless-LambdaDLQ",
            "CloudFormation invokes this custom-resource handler and waits for its answer: a "
            "failed run fails (and rolls back) the deployment, which is where it is seen; a "
            "dead-letter queue would keep requests that nobody replays",
        )
        acknowledge(
            function,
            "Serverless-LambdaTracing",
            "it runs only during deployments, to copy a few files with the AWS CLI; its log "
            "group records every command it ran, and X-Ray would need xray:Put* on any resource",
        )
        bucket = self.bucket.node.default_child
        assert isinstance(bucket, CfnElement)
        policy = self.deploy_role.node.find_child("DefaultPolicy").node.default_child
        assert policy is not None
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{self.resolve(self.get_logical_id(bucket))}.Arn>/*]",
            "the deployment uploads web/'s files and deletes the ones web/ no longer has, so "
            "it needs every key of this bucket, which holds the web client and nothing else; "
            "s3:PutObject and s3:DeleteObject are its only actions there",
        )

    def _review_auto_delete(self) -> None:
        """aws-cdk-lib's auto-delete provider, when `autoDeleteBuckets` puts it in the template.

        cdk-nag cannot see it: the provider declares its role and function as plain
        CfnResources (not iam.CfnRole or lambda.CfnFunction), and cdk-nag's rules test for
        those classes. So its review is recorded here, on each resource, and
        tests/infra/test_nag.py fails on any role or function nag cannot see that has none.
        """
        provider = self.node.try_find_child(AUTO_DELETE_PROVIDER)
        if provider is None:
            return
        role = provider.node.find_child("Role")
        handler = provider.node.find_child("Handler")
        assert isinstance(role, CfnResource) and isinstance(handler, CfnResource)
        review_outside_nag(
            role,
            (
                "AWSLambdaBasicExecutionRole for its own log; its S3 rights come from the two "
                "buckets' policies only (s3:DeleteObject*, s3:GetBucket*, s3:List*, "
                "s3:PutBucketPolicy), so it acts on those buckets only: it empties them, after "
                "rewriting their policy to refuse uploads. It runs when CloudFormation deletes a "
                "bucket's Custom::S3AutoDeleteObjects"
            ),
        )
        review_outside_nag(
            handler,
            (
                "aws-cdk-lib's code, invoked by CloudFormation only, when a bucket tagged "
                "aws-cdk:auto-delete-objects is deleted: it denies new uploads, then deletes every "
                "object so that the bucket can be deleted"
            ),
        )


def bucket_removal(policy: RemovalPolicy, auto_delete_buckets: bool) -> RemovalPolicy:
    """A web bucket's removal policy: retained unless `autoDeleteBuckets` lets it follow
    `policy` (deleting a bucket that still holds objects fails, so only an emptied bucket
    can be deleted)."""
    return policy if auto_delete_buckets else RemovalPolicy.RETAIN


def auto_delete(policy: RemovalPolicy, auto_delete_buckets: bool) -> bool:
    """Whether a web bucket gets CDK's auto-delete custom resource."""
    return bucket_removal(policy, auto_delete_buckets) == RemovalPolicy.DESTROY


def _resource(construct: Construct) -> CfnElement:
    resource = construct.node.default_child
    assert isinstance(resource, CfnElement)
    return resource
