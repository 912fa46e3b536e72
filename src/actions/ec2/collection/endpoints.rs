//! The VPC's Systems Manager and S3 endpoints, where they listen, and whether S3's is
//! restricted.

use aws_sdk_ec2::types::{Filter, VpcEndpoint};
use serde_json::Value;

use super::super::ActionError;
use super::SSM_SERVICES;
use crate::actions::StepContext;

/// The VPC's endpoints the path needs.
pub(super) struct Endpoints {
    /// The SSM services' interface endpoints' network interfaces.
    pub(super) ssm_interfaces: Vec<String>,
    pub(super) s3: Option<VpcEndpoint>,
    pub(super) missing: Vec<String>,
    pub(super) ids: Vec<String>,
}

impl Endpoints {
    pub(super) async fn find(
        ctx: &StepContext,
        vpc: &str,
        region: &str,
    ) -> Result<Endpoints, ActionError> {
        let names: Vec<String> = SSM_SERVICES
            .iter()
            .chain(["s3"].iter())
            .map(|s| format!("com.amazonaws.{region}.{s}"))
            .collect();
        // Every page, filtered here: the emulator the tests use implements neither the
        // `vpc-id` nor the `service-name` filter, and an account has few endpoints.
        let mut all: Vec<VpcEndpoint> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = ctx
                .call("ec2", "DescribeVpcEndpoints", &[vpc], || {
                    ctx.clients()
                        .ec2
                        .describe_vpc_endpoints()
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            all.extend(output.vpc_endpoints().iter().cloned());
            token = output
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let endpoints: Vec<&VpcEndpoint> = all
            .iter()
            .filter(|e| e.vpc_id() == Some(vpc))
            .filter(|e| names.iter().any(|n| e.service_name() == Some(n.as_str())))
            .filter(|e| {
                e.state()
                    .is_some_and(|s| s.as_str().eq_ignore_ascii_case("available"))
            })
            .collect();
        let mut found = Endpoints {
            ssm_interfaces: Vec::new(),
            s3: None,
            missing: Vec::new(),
            ids: endpoints
                .iter()
                .filter_map(|e| e.vpc_endpoint_id().map(str::to_owned))
                .collect(),
        };
        for (service, name) in SSM_SERVICES.iter().zip(&names) {
            // Private DNS makes the agent's usual host names resolve to the endpoint.
            let usable = endpoints.iter().find(|e| {
                e.service_name() == Some(name.as_str())
                    && e.vpc_endpoint_type()
                        .map(|t| t.as_str().to_ascii_lowercase())
                        == Some("interface".into())
                    && e.private_dns_enabled() == Some(true)
                    && !e.network_interface_ids().is_empty()
            });
            match usable {
                Some(e) => found
                    .ssm_interfaces
                    .extend(e.network_interface_ids().iter().cloned()),
                None => found.missing.push((*service).to_owned()),
            }
        }
        let s3 = format!("com.amazonaws.{region}.s3");
        found.s3 = endpoints
            .iter()
            .find(|e| e.service_name() == Some(s3.as_str()))
            .map(|e| (*e).clone());
        Ok(found)
    }
}

/// The private addresses of endpoint network interfaces, as /32s.
pub(super) async fn endpoint_addresses(
    ctx: &StepContext,
    interfaces: &[String],
) -> Result<Vec<String>, ActionError> {
    if interfaces.is_empty() {
        return Ok(Vec::new());
    }
    let targets: Vec<&str> = interfaces.iter().map(String::as_str).collect();
    let output = ctx
        .call("ec2", "DescribeNetworkInterfaces", &targets, || {
            ctx.clients()
                .ec2
                .describe_network_interfaces()
                .set_network_interface_ids(Some(interfaces.to_vec()))
                .send()
        })
        .await?;
    Ok(output
        .network_interfaces()
        .iter()
        .flat_map(|eni| {
            let mut addresses: Vec<String> = eni
                .private_ip_addresses()
                .iter()
                .filter_map(|a| a.private_ip_address().map(str::to_owned))
                .collect();
            addresses.extend(eni.private_ip_address().map(str::to_owned));
            addresses
        })
        .map(|ip| format!("{ip}/32"))
        .collect())
}

pub(super) enum Destination {
    PrefixList(String),
    Addresses(Vec<String>),
}

/// Where S3 is reached: a gateway endpoint's prefix list, an interface endpoint's addresses.
pub(super) async fn s3_destination(
    ctx: &StepContext,
    endpoint: &VpcEndpoint,
    region: &str,
) -> Result<Destination, ActionError> {
    if !endpoint.network_interface_ids().is_empty() {
        let addresses = endpoint_addresses(ctx, endpoint.network_interface_ids()).await?;
        return Ok(Destination::Addresses(addresses));
    }
    let name = format!("com.amazonaws.{region}.s3");
    let output = ctx
        .call("ec2", "DescribePrefixLists", &[name.as_str()], || {
            ctx.clients()
                .ec2
                .describe_prefix_lists()
                .filters(
                    Filter::builder()
                        .name("prefix-list-name")
                        .values(&name)
                        .build(),
                )
                .send()
        })
        .await?;
    output
        .prefix_lists()
        .iter()
        .find_map(|p| p.prefix_list_id().map(str::to_owned))
        .map(Destination::PrefixList)
        .ok_or_else(|| ActionError::Failed(format!("no prefix list named {name}")))
}

/// Whether an endpoint policy keeps S3 to named buckets: no statement allows every resource
/// without a condition. No policy at all is AWS's default, which allows everything.
pub(super) fn s3_policy_restricted(policy: Option<&str>) -> bool {
    let Some(Ok(policy)) = policy.map(serde_json::from_str::<Value>) else {
        return false;
    };
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        Value::Object(_) => vec![policy["Statement"].clone()],
        _ => return false,
    };
    let every_resource = |s: &Value| {
        if s.get("NotResource").is_some() {
            return true;
        }
        let resources = match &s["Resource"] {
            Value::String(one) => vec![one.clone()],
            Value::Array(list) => list
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        resources
            .iter()
            .any(|r| r == "*" || r.starts_with("arn:aws:s3:::*"))
    };
    !statements
        .iter()
        .any(|s| s["Effect"] == "Allow" && s.get("Condition").is_none() && every_resource(s))
}

#[cfg(test)]
mod tests {
    use super::s3_policy_restricted;

    #[test]
    fn an_endpoint_policy_is_restricted_only_when_no_statement_allows_every_bucket() {
        // AWS's default endpoint policy, and no policy at all, allow everything.
        let default =
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
        assert!(!s3_policy_restricted(Some(default)));
        assert!(!s3_policy_restricted(None));
        assert!(!s3_policy_restricted(Some("not json")));
        let everything = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":["arn:aws:s3:::*/*"]}}"#;
        assert!(!s3_policy_restricted(Some(everything)));
        let not_resource = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","NotResource":"arn:aws:s3:::x/*"}]}"#;
        assert!(!s3_policy_restricted(Some(not_resource)));
        let named = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:PutObject","s3:GetObject"],"Resource":["arn:aws:s3:::evidence-123/*","arn:aws:s3:::amazonlinux-2-repos-us-east-1/*"]}]}"#;
        assert!(s3_policy_restricted(Some(named)));
        let conditioned = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceAccount":"123456789012"}}}]}"#;
        assert!(s3_policy_restricted(Some(conditioned)));
    }
}
