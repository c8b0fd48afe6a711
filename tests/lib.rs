//! Shared helpers of the end-to-end tests and the benchmark: boot the platform in one process
//! on ephemeral ports, each run with its own database.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crm_kit::{CancellationToken, Clock, Settings};
use tonic::transport::Channel;

/// The platform running in this process, stopped when dropped.
pub struct Running {
    /// Where each service listens.
    pub addrs: BTreeMap<&'static str, SocketAddr>,
    /// The settings it runs with.
    pub settings: Settings,
    /// Cancel to stop it.
    pub shutdown: CancellationToken,
    /// The running platform; take it to wait for a graceful stop.
    pub platform: Option<crm::Platform>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Running {
    /// A channel to `service`.
    pub async fn channel(&self, service: &str) -> Channel {
        Channel::from_shared(format!("http://{}", self.addrs[service]))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }
}

/// The password of the users [`Running::users`] creates.
pub const PASSWORD: &str = "correct horse battery staple";

impl Running {
    /// Creates users `(name, role, region)` at the gateway (display name "<name> (demo)",
    /// e-mail <name>@example.com, Chinese, password [`PASSWORD`]); their ids by name.
    pub async fn users(
        &self,
        users: &[(&'static str, &str, &str)],
    ) -> BTreeMap<&'static str, String> {
        let identity = crm::admin::identity(&self.settings)
            .await
            .expect("the gateway's identity store");
        let mut ids = BTreeMap::new();
        for (name, role, region) in users {
            let user = crm_proto::gateway::v1::User {
                username: (*name).into(),
                display_name: format!("{name} (demo)"),
                roles: vec![(*role).into()],
                region: (*region).into(),
                email: format!("{name}@example.com"),
                language: "zh".into(),
                ..Default::default()
            };
            let created =
                crm::admin::create_user(&identity, &format!("seed-{name}"), user, PASSWORD, "test")
                    .await
                    .expect("create a user");
            ids.insert(*name, created.id);
        }
        ids
    }

    /// A new API key of the partner organisation `partner` (role `partner`, 30 days), as an
    /// admin makes it: its secret, shown once.
    pub async fn partner_key(&self, partner: &str) -> String {
        let identity = crm::admin::identity(&self.settings)
            .await
            .expect("the gateway's identity store");
        crm::admin::create_api_key(
            &identity,
            crm_proto::gateway::v1::ApiKey {
                name: format!("{partner} repair system"),
                roles: vec!["partner".into()],
                partner_id: partner.into(),
                ..Default::default()
            },
            30,
            "test",
        )
        .await
        .expect("an API key")
        .secret
    }

    /// A client of the customers service as an admin, straight to the service.
    pub async fn customers_admin(
        &self,
    ) -> crm_proto::customers::v1::customer_service_client::CustomerServiceClient<
        tonic::service::interceptor::InterceptedService<Channel, crm_kit::testing::Bearer>,
    > {
        let token = crm_kit::testing::token(
            &self.settings,
            &crm_kit::testing::TestCaller {
                subject: "test.admin",
                roles: &["admin"],
                ..Default::default()
            },
            600,
        );
        crm_proto::customers::v1::customer_service_client::CustomerServiceClient::with_interceptor(
            self.channel("customers").await,
            crm_kit::testing::Bearer::new(&token),
        )
    }

    /// Creates a customer of `region` at the customers service (as an admin, straight to the
    /// service) and returns its id: what a ticket needs before it can be opened (T-1).
    pub async fn customer(&self, name: &str, region: &str) -> String {
        use crm_proto::customers::v1 as pb;
        self.customers_admin()
            .await
            .create_customer(pb::CreateCustomerRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                customer: Some(pb::Customer {
                    display_name: name.into(),
                    region: region.into(),
                    contacts: vec![pb::Contact {
                        name: "王晓明".into(),
                        phone: "+86 138 0013 8000".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            })
            .await
            .expect("create a customer")
            .into_inner()
            .customer
            .expect("the customer")
            .id
    }
}

/// Migrates and starts every service of this build with `settings` (ports 0 for tests).
pub async fn start(settings: Settings, clock: Clock) -> anyhow::Result<Running> {
    let services = crm::resolve(&[])?;
    crm::migrate(&settings, &services).await?;
    let shutdown = CancellationToken::new();
    let platform = crm::Platform::start(&settings, &services, clock, shutdown.clone()).await?;
    Ok(Running {
        addrs: platform.addrs.clone(),
        settings,
        shutdown,
        platform: Some(platform),
    })
}
