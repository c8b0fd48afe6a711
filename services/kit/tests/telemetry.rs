//! Trace context across a call: taken from incoming metadata, put into outgoing metadata.

use crm_kit::{Settings, telemetry};

#[test]
fn the_trace_context_goes_from_an_incoming_call_to_an_outgoing_one() {
    let settings = Settings::load(None).unwrap();
    let _guard = telemetry::init("test", &settings.telemetry, std::io::sink).unwrap();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let incoming = http::Request::builder()
        .uri("/crm.customers.v1.CustomerService/GetCustomer")
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .body(())
        .unwrap();
    let span = telemetry::server_span("customers", &incoming);
    let _entered = span.enter();
    assert_eq!(telemetry::current_trace_id().as_deref(), Some(trace_id));

    let outgoing = telemetry::inject_trace_context(tonic::Request::new(())).unwrap();
    let traceparent = outgoing
        .metadata()
        .get("traceparent")
        .expect("traceparent injected")
        .to_str()
        .unwrap();
    let parts: Vec<_> = traceparent.split('-').collect();
    assert_eq!(parts[1], trace_id, "same trace");
    assert_ne!(parts[2], "b7ad6b7169203331", "a new span of this service");
}
