//! The checked SetUsualEngineer (T-6).

use crm_kit::{
    Error, Violations,
    text::{self, Lines},
};
use crm_proto::tickets::v1::{self as pb};

/// A checked SetUsualEngineer: the customer's id.
pub fn parse_usual_engineer(r: &pb::SetUsualEngineerRequest) -> Result<uuid::Uuid, Error> {
    let mut v = Violations::new();
    let customer = uuid::Uuid::parse_str(&r.customer_id);
    if customer.is_err() {
        v.add("customer_id", "must be a customer id");
    }
    text::check(&mut v, "engineer_id", &r.engineer_id, 200, Lines::One);
    v.finish()?;
    Ok(customer.unwrap_or_default())
}
