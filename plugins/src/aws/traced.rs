//! Every AWS SDK call of a client whose config has [`Traced`] is a client span:
//! `rpc.system = aws-api`, `rpc.service`, `rpc.method`, `aws.region`, the bucket, hosted zone
//! or secret's name where the call names one, the status, and the response's size. Never a
//! header, a credential, a signature or a secret's value.
//!
//! The span is opened when the SDK starts the call and ended when it is done, by an
//! interceptor; the W3C `traceparent` of that span is added to each request in
//! `modify_before_transmit`, that is after SigV4 signing: the header is not among the signed
//! ones, so nothing on the way (a proxy or a mesh sidecar that rewrites `traceparent`, as
//! W3C Trace Context allows) can break the signature, and the signature does not depend on
//! whether tracing is on. (Before signing it would be signed too, which also works, but then
//! any rewrite fails the request with a signature mismatch.)

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut, FinalizerInterceptorContextRef, Input,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_types::region::Region;
use tracing::Span;
use tracing::field::Empty;

use crate::telemetry::{client_span, fail, traceparent_of};

/// The interceptor; each AWS client's config has it (`.interceptor(Traced)`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Traced;

/// The span of the call in flight, kept in the call's config bag.
#[derive(Debug, Clone)]
struct CallSpan(Span);

impl Storable for CallSpan {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Traced {
    fn name(&self) -> &'static str {
        "phoenix-tracing"
    }

    // Not `read_before_execution`: a client's interceptors see that before the operation's
    // configuration (its name) is in the bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, method) = cfg.load::<Metadata>().map_or(("", ""), |m| (m.service(), m.name()));
        let service = service_name(service);
        let span = client_span!(
            "aws.call",
            otel.name = format!("{service}/{method}"),
            rpc.system = "aws-api",
            rpc.service = service,
            rpc.method = method,
            aws.region = cfg.load::<Region>().map(Region::as_ref).unwrap_or_default(),
            aws.s3.bucket = Empty,
            aws.route53.hosted_zone_id = Empty,
            aws.secretsmanager.secret_id = Empty,
            server.address = Empty,
            server.port = Empty,
            http.response.status_code = Empty,
            http.response.body.size = Empty,
        );
        names(context.input(), &span);
        cfg.interceptor_state().store_put(CallSpan(span));
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(CallSpan(span)) = cfg.load::<CallSpan>() else { return Ok(()) };
        let request = context.request_mut();
        if let Ok(url) = reqwest::Url::parse(request.uri()) {
            span.record("server.address", url.host_str().unwrap_or_default());
            span.record("server.port", url.port_or_known_default().unwrap_or_default());
        }
        if let Some(value) = traceparent_of(span) {
            if request.headers().get("traceparent").is_none() {
                request.headers_mut().insert("traceparent", value);
            }
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(CallSpan(span)) = cfg.load::<CallSpan>().cloned() else { return Ok(()) };
        cfg.interceptor_state().unset::<CallSpan>();
        let status = context.response().map(|r| r.status().as_u16());
        if let Some(status) = status {
            span.record("http.response.status_code", status);
        }
        // The header: a streamed body (GetObject's) has been handed over by now.
        let length = |r: &aws_smithy_runtime_api::http::Response| r.headers().get("content-length").and_then(|v| v.parse::<u64>().ok());
        if let Some(size) = context.response().and_then(length) {
            span.record("http.response.body.size", size);
        }
        if let Some(Err(e)) = context.output_or_error() {
            let kind = if e.is_timeout_error() {
                "timeout".to_string()
            } else if e.is_connector_error() {
                "connect".to_string()
            } else if let Some(status) = status.filter(|s| *s >= 300) {
                status.to_string()
            } else if e.is_response_error() {
                "response".to_string()
            } else {
                "error".to_string()
            };
            fail(&span, &kind);
        }
        Ok(())
    }
}

/// The service's name as in AWS's API references (`S3`, `Route 53` is `Route53`…), from the
/// SDK's lower-case one.
fn service_name(sdk: &str) -> &str {
    match sdk.to_ascii_lowercase().as_str() {
        "s3" => "S3",
        "route53" | "route 53" => "Route53",
        "eks" => "EKS",
        "health" => "Health",
        "sts" => "STS",
        "secretsmanager" | "secrets manager" => "SecretsManager",
        _ => sdk,
    }
}

/// Records the bucket, hosted zone or secret's name the call's input names.
fn names(input: &Input, span: &Span) {
    macro_rules! by_type {
        ($field:literal, $get:ident, $($ty:ty),+ $(,)?) => {
            $(if let Some(i) = input.downcast_ref::<$ty>() {
                if let Some(v) = i.$get() {
                    span.record($field, v);
                }
                return;
            })+
        };
    }
    use aws_sdk_s3::operation as s3;
    by_type!(
        "aws.s3.bucket",
        bucket,
        s3::get_object::GetObjectInput,
        s3::put_object::PutObjectInput,
        s3::head_object::HeadObjectInput,
        s3::delete_object::DeleteObjectInput,
        s3::delete_objects::DeleteObjectsInput,
        s3::list_objects_v2::ListObjectsV2Input,
        s3::create_multipart_upload::CreateMultipartUploadInput,
        s3::upload_part::UploadPartInput,
        s3::complete_multipart_upload::CompleteMultipartUploadInput,
        s3::abort_multipart_upload::AbortMultipartUploadInput,
    );
    use aws_sdk_route53::operation as r53;
    by_type!(
        "aws.route53.hosted_zone_id",
        hosted_zone_id,
        r53::change_resource_record_sets::ChangeResourceRecordSetsInput,
        r53::list_resource_record_sets::ListResourceRecordSetsInput,
    );
    by_type!("aws.secretsmanager.secret_id", secret_id, aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueInput);
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Status, TraceContextExt};
    use serde_json::json;
    use tracing::{Instrument, Level, info_span};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::Plugin;
    use crate::telemetry::testing::{assert_no_secret, attrs, ctx, install, serve};

    const SECRET_KEY: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYsecret";
    const SESSION: &str = "sess-TOKEN-9f8e7d6c5b4a";

    fn creds(base: &str) -> serde_json::Value {
        json!({ "endpoint_url": base, "region": "eu-west-1", "access_key_id": "AKIDPHOENIXTEST",
                "secret_access_key": SECRET_KEY, "session_token": SESSION })
    }

    #[tokio::test]
    async fn an_s3_call_is_a_child_span_with_the_bucket_and_sends_traceparent_outside_the_signature() {
        let traces = install(Level::INFO);
        let (base, seen) = serve(200, "hello").await;
        let mut with = creds(&base);
        with["bucket"] = json!("dr-bucket");
        with["key"] = json!("db/backup.sql");
        let step = info_span!("step");
        crate::aws::S3Get.run(&ctx(), serde_json::from_value(with).unwrap()).instrument(step.clone()).await.expect("the object is read");
        let step_cx = step.context();
        drop(step);

        let span = traces.one("S3/GetObject");
        let a = attrs(&span);
        assert_eq!(a["rpc.system"], "aws-api");
        assert_eq!(a["rpc.service"], "S3");
        assert_eq!(a["rpc.method"], "GetObject");
        assert_eq!(a["aws.region"], "eu-west-1");
        assert_eq!(a["aws.s3.bucket"], "dr-bucket");
        assert_eq!(a["server.address"], "127.0.0.1");
        assert_eq!(a["http.response.status_code"], "200");
        assert_eq!(a["http.response.body.size"], "5");
        assert!(!a.contains_key("error.type"), "{a:?}");
        assert_eq!(span.parent_span_id, step_cx.span().span_context().span_id(), "the call's span is a child of the step's");

        let got = seen.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        let expected = format!("00-{}-{}-01", span.span_context.trace_id(), span.span_context.span_id());
        assert_eq!(got[0].headers.get("traceparent"), Some(&expected));
        let auth = got[0].headers.get("authorization").expect("the request is signed");
        assert!(!auth.contains("traceparent"), "traceparent is added after signing: {auth}");
        let signature = auth.rsplit("Signature=").next().unwrap();
        let all = traces.spans();
        for secret in [SECRET_KEY, SESSION, signature] {
            assert_no_secret(&all, secret);
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_a_failed_span_of_kind_connect() {
        let traces = install(Level::INFO);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let mut with = creds(&format!("http://{closed}"));
        with["bucket"] = json!("b");
        with["key"] = json!("k");
        crate::aws::S3Get.run(&ctx(), serde_json::from_value(with).unwrap()).await.expect_err("refused");
        let a = attrs(&traces.one("S3/GetObject"));
        assert_eq!(a["error.type"], "connect");
        assert!(!a.contains_key("http.response.status_code"));
    }

    #[tokio::test]
    async fn a_failed_route53_call_is_a_failed_span_with_its_zone() {
        let traces = install(Level::INFO);
        let (base, _) = serve(500, "<ErrorResponse><Error><Code>InternalError</Code></Error></ErrorResponse>").await;
        let mut with = creds(&base);
        with["zone_id"] = json!("Z0PHOENIX42");
        with["name"] = json!("db.example.com");
        with["type"] = json!("CNAME");
        crate::aws::Route53Get.run(&ctx(), serde_json::from_value(with).unwrap()).instrument(info_span!("step")).await.expect_err("500");
        let span = traces.one("Route53/ListResourceRecordSets");
        let a = attrs(&span);
        assert_eq!(a["aws.route53.hosted_zone_id"], "Z0PHOENIX42");
        assert_eq!(a["http.response.status_code"], "500");
        assert_eq!(a["error.type"], "500");
        assert!(matches!(span.status, Status::Error { .. }), "{:?}", span.status);
        assert_no_secret(&traces.spans(), SECRET_KEY);
    }
}
