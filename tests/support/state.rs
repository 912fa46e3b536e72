//! What a run left in moto, as a fingerprint two runs can be compared by: the crash matrix over
//! the shipped runbooks (`tests/suite/crash_runbooks.rs`) runs each runbook once uncrashed and
//! once per crash point, each on freshly reseeded moto, and the resumed run must leave the same
//! fingerprint as the uncrashed one.
//!
//! Ids differ between two seeds (and run ids, times and idempotency keys between two runs), so
//! nothing here keys on them: resources are named by their `Name` tag, their name, the instance
//! and device they belong to, and every id left in a value is replaced by what it names
//! ([`Names::scrub`]). Read straight from moto, never through the proxy (not counted).
//!
//! Also the principals and planted groups `tests/suite/declared_calls.rs` seeds, for runs that
//! need the same setup.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use aws_sdk_ec2::types::{Filter, InstanceAttributeName, IpPermission};
use regex::{Captures, Regex};
use serde_json::json;

use super::{moto, sandbox};

/// A user with an access key, a console password and an inline policy; a role with an inline
/// policy in an instance profile (`<name>-app` of `sandbox::seed("web-1")`, which must come
/// first). The access key's id.
pub async fn seed_principals() -> String {
    let iam = aws_sdk_iam::Client::new(&moto::direct_config().await);
    iam.create_user().user_name("leaky").send().await.unwrap();
    let key = iam
        .create_access_key()
        .user_name("leaky")
        .send()
        .await
        .unwrap();
    iam.create_login_profile()
        .user_name("leaky")
        .password("Correct-Horse-9!")
        .send()
        .await
        .unwrap();
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}).to_string();
    iam.put_user_policy()
        .user_name("leaky")
        .policy_name("reads")
        .policy_document(&policy)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("web-1-app")
        .policy_name("reads")
        .policy_document(&policy)
        .send()
        .await
        .unwrap();
    key.access_key().unwrap().access_key_id().to_owned()
}

/// Groups planted in the VPC under firebreak's names and role tags (without its managed tag):
/// an isolation group with an inbound rule, an untrack group without its outbound rule.
/// Isolation never adopts them: it makes its own under a name with its run id (the
/// name-collision path).
pub async fn plant_groups(vpc: &str) {
    use aws_sdk_ec2::types::{IpRange, ResourceType, Tag, TagSpecification};
    let ec2 = sandbox::ec2().await;
    let role_tag = |role: &str| {
        TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroup)
            .tags(Tag::builder().key("firebreak:role").value(role).build())
            .build()
    };
    let untrack = ec2
        .create_security_group()
        .group_name("firebreak-untrack")
        .description("planted")
        .vpc_id(vpc)
        .tag_specifications(role_tag("untrack"))
        .send()
        .await
        .unwrap();
    let described = ec2
        .describe_security_groups()
        .group_ids(untrack.group_id().unwrap())
        .send()
        .await
        .unwrap();
    let egress = described.security_groups()[0]
        .ip_permissions_egress()
        .to_vec();
    if !egress.is_empty() {
        ec2.revoke_security_group_egress()
            .group_id(untrack.group_id().unwrap())
            .set_ip_permissions(Some(egress))
            .send()
            .await
            .unwrap();
    }
    let group = ec2
        .create_security_group()
        .group_name("firebreak-isolation")
        .description("planted")
        .vpc_id(vpc)
        .tag_specifications(role_tag("isolation"))
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(group.group_id().unwrap())
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// The normalized state of moto: `service:resource:…` → what it is. Two runs that did the same
/// thing on two seeds of the same sandbox have equal fingerprints.
pub async fn fingerprint() -> BTreeMap<String, String> {
    let config = moto::direct_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let names = Names::read(&ec2).await;
    let mut print = Print::default();
    instances(&ec2, &names, &mut print).await;
    security_groups(&ec2, &names, &mut print).await;
    snapshots(&ec2, &names, &mut print).await;
    volumes(&ec2, &names, &mut print).await;
    addresses(&ec2, &names, &mut print).await;
    autoscaling(
        &aws_sdk_autoscaling::Client::new(&config),
        &names,
        &mut print,
    )
    .await;
    iam_users(&aws_sdk_iam::Client::new(&config), &names, &mut print).await;
    iam_roles(&aws_sdk_iam::Client::new(&config), &names, &mut print).await;
    stacks(
        &aws_sdk_cloudformation::Client::new(&config),
        &names,
        &mut print,
    )
    .await;
    ssm_commands(&aws_sdk_ssm::Client::new(&config), &names, &mut print).await;
    beyond_ec2(&config, &mut print).await;
    print.finish()
}

/// A bucket's name with CloudFormation's random suffix as `*`. A clean room's bucket is named
/// `<stack>-<logical id>-<suffix>`, the suffix twelve letters and digits drawn anew each time. It
/// may hold no digit at all (a CI run drew `krrqrtferpns`), so the stack's name marks it, not the
/// suffix's look.
fn stable_bucket_name(name: &str) -> String {
    match name.rsplit_once('-') {
        Some((stem, suffix))
            if stem.starts_with("firebreak-clean-room-")
                && suffix.len() == 12
                && suffix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
        {
            format!("{stem}-*")
        }
        _ => name.to_owned(),
    }
}

#[test]
fn a_clean_rooms_bucket_is_named_without_its_suffix_whatever_the_suffix_draws() {
    for drawn in ["krrqrtferpns", "a1b2c3d4e5f6", "123456789012"] {
        assert_eq!(
            stable_bucket_name(&format!(
                "firebreak-clean-room-case-1-evidencebucket-{drawn}"
            )),
            "firebreak-clean-room-case-1-evidencebucket-*"
        );
    }
    for own in [
        "covered-bare",
        "exposed-bucket-krrqrtferpns",
        "firebreak-clean-room-case-1-x-Y",
    ] {
        assert_eq!(stable_bucket_name(own), own);
    }
}

/// Buckets, functions and Identity Center users, each as its own test describes it (volatile
/// fields left out there).
async fn beyond_ec2(config: &aws_config::SdkConfig, print: &mut Print) {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    );
    for bucket in s3.list_buckets().send().await.unwrap().buckets() {
        let name = bucket.name().unwrap_or_default();
        let stable_name = stable_bucket_name(name);
        print.add(
            format!("s3:bucket:{stable_name}"),
            crate::s3_exposure::describe(&s3, name)
                .await
                .to_string()
                .replace(name, &stable_name),
        );
    }
    let lambda = aws_sdk_lambda::Client::new(config);
    for function in lambda.list_functions().send().await.unwrap().functions() {
        let name = function.function_name().unwrap_or_default();
        print.add(
            format!("lambda:function:{name}"),
            stable(crate::lambda_compromise::describe(name)).to_string(),
        );
    }
    let sso = aws_sdk_ssoadmin::Client::new(config);
    let instances = sso.list_instances().send().await.unwrap();
    if let Some(store) = instances
        .instances()
        .first()
        .and_then(|i| i.identity_store_id())
    {
        let ids = aws_sdk_identitystore::Client::new(config);
        let users = ids
            .list_users()
            .identity_store_id(store)
            .send()
            .await
            .unwrap();
        for user in users.users() {
            let name = user.user_name().unwrap_or_default();
            print.add(
                format!("sso:user:{name}"),
                crate::identity_center::script(&["describe", name]).to_string(),
            );
        }
    }
}

/// The lines of a differing pair of fingerprints, for an assertion message that shows only
/// what changed.
pub fn diff(expected: &BTreeMap<String, String>, actual: &BTreeMap<String, String>) -> String {
    let mut keys: Vec<&String> = expected.keys().chain(actual.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| expected.get(*k) != actual.get(*k))
        .map(|k| {
            format!(
                "{k}\n  uncrashed: {}\n  resumed:   {}",
                expected.get(k).map_or("(absent)", String::as_str),
                actual.get(k).map_or("(absent)", String::as_str)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fingerprint being built. Several resources may share a key (two snapshots of one
/// volume, instances without a `Name`): their descriptions are kept sorted, so a count shows as
/// repeated entries and creation order does not matter.
#[derive(Default)]
struct Print {
    entries: BTreeMap<String, Vec<String>>,
}

impl Print {
    fn add(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries
            .entry(key.into())
            .or_default()
            .push(value.into());
    }

    fn finish(self) -> BTreeMap<String, String> {
        self.entries
            .into_iter()
            .map(|(key, mut values)| {
                values.sort();
                let value = match values.len() {
                    1 => values.pop().unwrap(),
                    n => format!("{n} × [{}]", values.join(" | ")),
                };
                (key, value)
            })
            .collect()
    }
}

/// What each id in the account names, seed-independently: an instance by its `Name` tag, a
/// security group by its name, a VPC by its `Name` (or the instances in it), a volume by the
/// instance and device it is attached to, a snapshot by the volume (or snapshot) it was made from.
struct Names {
    labels: HashMap<String, String>,
}

static AWS_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(i|vol|snap|sg|eni|eipalloc|eipassoc|vpc|subnet|iip-assoc|ami|lt|rtb|igw|vpce|pl|nacl|fl)-[0-9a-f]{8,17}\b").unwrap()
});
/// A run id (`20261128T100127Z-3f9a2c`), lower-cased too (in group names).
static RUN_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b\d{8}t\d{6}z-[0-9a-f]{6}\b").unwrap());
static ACCESS_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b").unwrap());
/// The random suffix moto's CloudFormation gives the resources it names
/// (`<stack>-<logical id>-<12 characters>`).
static CFN_SUFFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"-[0-9A-Z]{12}\b").unwrap());
/// A UUID (a CloudFormation stack id in the `aws:cloudformation:stack-id` tag).
static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b").unwrap()
});
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})").unwrap()
});

impl Names {
    async fn read(ec2: &aws_sdk_ec2::Client) -> Names {
        let mut labels = HashMap::new();
        let instances = all_instances(ec2).await;
        for instance in &instances {
            labels.insert(
                instance.instance_id().unwrap_or_default().to_owned(),
                instance_name(instance),
            );
        }
        let vpcs = ec2.describe_vpcs().send().await.unwrap();
        for vpc in vpcs.vpcs() {
            let id = vpc.vpc_id().unwrap_or_default();
            let label = match tag(vpc.tags().iter().map(ec2_tag), "Name") {
                Some(name) => name.to_owned(),
                None if vpc.is_default() == Some(true) => "default".to_owned(),
                None => {
                    let mut inside: Vec<String> = instances
                        .iter()
                        .filter(|i| i.vpc_id() == Some(id))
                        .map(instance_name)
                        .filter(|n| n != NO_NAME)
                        .collect();
                    inside.sort();
                    inside.dedup();
                    format!("vpc-of({})", inside.join("+"))
                }
            };
            labels.insert(id.to_owned(), label);
        }
        let groups = ec2.describe_security_groups().send().await.unwrap();
        let mut names = Names { labels };
        for group in groups.security_groups() {
            let name = names.scrub(group.group_name().unwrap_or_default());
            names
                .labels
                .insert(group.group_id().unwrap_or_default().to_owned(), name);
        }
        let volumes = ec2.describe_volumes().send().await.unwrap();
        for volume in volumes.volumes() {
            let label = match volume.attachments().first() {
                Some(a) => format!(
                    "vol({}:{})",
                    names.label(a.instance_id().unwrap_or_default()),
                    a.device().unwrap_or_default()
                ),
                None => "vol(unattached)".to_owned(),
            };
            names
                .labels
                .insert(volume.volume_id().unwrap_or_default().to_owned(), label);
        }
        // Originals before copies: a copy is named after its source snapshot.
        let snapshots = own_snapshots(ec2).await;
        let (copies, originals): (Vec<_>, Vec<_>) = snapshots
            .iter()
            .partition(|s| tag(s.tags().iter().map(ec2_tag), SOURCE_SNAPSHOT).is_some());
        for snapshot in originals {
            let label = format!(
                "snap({})",
                names.label(snapshot.volume_id().unwrap_or_default())
            );
            names
                .labels
                .insert(snapshot.snapshot_id().unwrap_or_default().to_owned(), label);
        }
        for snapshot in copies {
            let source = tag(snapshot.tags().iter().map(ec2_tag), SOURCE_SNAPSHOT).unwrap();
            let label = format!("copy({})", names.label(source));
            names
                .labels
                .insert(snapshot.snapshot_id().unwrap_or_default().to_owned(), label);
        }
        names
    }

    /// What `id` names, or its kind when it names nothing seen (`<snap>`).
    fn label(&self, id: &str) -> String {
        match self.labels.get(id) {
            Some(label) => label.clone(),
            None => match id.split_once('-') {
                Some((kind, _)) => format!("<{kind}>"),
                None => format!("<{id}>"),
            },
        }
    }

    /// `text` with every id replaced by what it names, and run ids, access key ids, UUIDs, times
    /// and CloudFormation's random name suffixes by placeholders. A comma-separated list (a tag
    /// holding several group ids) comes back sorted.
    fn scrub(&self, text: &str) -> String {
        if text.contains(',') {
            let mut parts: Vec<String> = text.split(',').map(|p| self.scrub(p.trim())).collect();
            parts.sort();
            return parts.join(",");
        }
        let text = UUID.replace_all(text, "<uuid>");
        let text = AWS_ID.replace_all(&text, |c: &Captures| self.label(&c[0]));
        let text = RUN_ID.replace_all(&text, "<run>");
        let text = ACCESS_KEY.replace_all(&text, "<access-key>");
        let text = TIME.replace_all(&text, "<time>");
        CFN_SUFFIX.replace_all(&text, "-<cfn>").into_owned()
    }

    /// Tags as sorted `key=value`, values scrubbed.
    fn tags<'a>(&self, tags: impl Iterator<Item = (&'a str, &'a str)>) -> String {
        let mut lines: Vec<String> = tags
            .map(|(k, v)| format!("{k}={}", self.scrub(v)))
            .collect();
        lines.sort();
        format!("[{}]", lines.join(", "))
    }
}

const NO_NAME: &str = "(no Name)";
const SOURCE_SNAPSHOT: &str = "firebreak:source-snapshot";

fn ec2_tag(t: &aws_sdk_ec2::types::Tag) -> (&str, &str) {
    (t.key().unwrap_or_default(), t.value().unwrap_or_default())
}

fn tag<'a>(mut tags: impl Iterator<Item = (&'a str, &'a str)>, key: &str) -> Option<&'a str> {
    tags.find(|(k, _)| *k == key).map(|(_, v)| v)
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn instance_name(instance: &aws_sdk_ec2::types::Instance) -> String {
    tag(instance.tags().iter().map(ec2_tag), "Name")
        .unwrap_or(NO_NAME)
        .to_owned()
}

async fn all_instances(ec2: &aws_sdk_ec2::Client) -> Vec<aws_sdk_ec2::types::Instance> {
    ec2.describe_instances()
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .collect()
}

/// The account's own snapshots (not the public ones behind moto's AMIs).
async fn own_snapshots(ec2: &aws_sdk_ec2::Client) -> Vec<aws_sdk_ec2::types::Snapshot> {
    ec2.describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap()
        .snapshots()
        .to_vec()
}

/// Each instance by `Name`: state, termination protection, metadata options, instance profile,
/// tags, block devices (keep on termination or not) and each interface's groups and tags (by
/// device index).
async fn instances(ec2: &aws_sdk_ec2::Client, names: &Names, print: &mut Print) {
    let associations = ec2
        .describe_iam_instance_profile_associations()
        .send()
        .await
        .unwrap();
    let interfaces = interface_groups(ec2, names).await;
    for instance in all_instances(ec2).await {
        let id = instance.instance_id().unwrap_or_default();
        let key = format!("ec2:instance:{}", instance_name(&instance));
        let state = instance
            .state()
            .and_then(|s| s.name())
            .map_or("?", |s| s.as_str());
        print.add(format!("{key}:state"), state);
        let protection = ec2
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(InstanceAttributeName::DisableApiTermination)
            .send()
            .await
            .ok()
            .and_then(|a| a.disable_api_termination().and_then(|v| v.value()));
        print.add(
            format!("{key}:termination_protection"),
            format!("{protection:?}"),
        );
        let imds = instance.metadata_options().map_or("none".to_owned(), |m| {
            format!(
                "endpoint={} tokens={} hop_limit={:?} tags={}",
                m.http_endpoint().map_or("?", |v| v.as_str()),
                m.http_tokens().map_or("?", |v| v.as_str()),
                m.http_put_response_hop_limit(),
                m.instance_metadata_tags().map_or("?", |v| v.as_str()),
            )
        });
        print.add(format!("{key}:imds"), imds);
        let profile = associations
            .iam_instance_profile_associations()
            .iter()
            .filter(|a| a.instance_id() == Some(id))
            .filter(|a| a.state().is_some_and(|s| s.as_str() == "associated"))
            .filter_map(|a| a.iam_instance_profile().and_then(|p| p.arn()))
            .map(|arn| names.scrub(arn.rsplit('/').next().unwrap_or(arn)))
            .collect::<Vec<_>>()
            .join(",");
        print.add(format!("{key}:profile"), profile);
        print.add(
            format!("{key}:tags"),
            names.tags(instance.tags().iter().map(ec2_tag)),
        );
        let mut devices: Vec<String> = instance
            .block_device_mappings()
            .iter()
            .map(|d| {
                format!(
                    "{} delete_on_termination={:?}",
                    d.device_name().unwrap_or_default(),
                    d.ebs().and_then(|e| e.delete_on_termination())
                )
            })
            .collect();
        devices.sort();
        print.add(format!("{key}:devices"), devices.join(", "));
        let mut attached: Vec<&Interface> = interfaces
            .iter()
            .filter(|i| i.instance.as_deref() == Some(id))
            .collect();
        attached.sort_by_key(|i| i.device_index);
        for interface in attached {
            print.add(
                format!(
                    "{key}:eni#{}",
                    interface
                        .device_index
                        .map_or("?".to_owned(), |d| d.to_string())
                ),
                format!(
                    "groups=[{}] tags={}",
                    interface.groups.join(","),
                    interface.tags
                ),
            );
        }
    }
}

/// An interface as the fingerprint sees it.
struct Interface {
    instance: Option<String>,
    device_index: Option<i32>,
    /// Its own groups' names, sorted.
    groups: Vec<String>,
    tags: String,
}

/// Every interface with its own groups. Read group by group through the `group-id` filter:
/// moto's `Groups` of an attached interface adds the instance's launch groups (in set order).
async fn interface_groups(ec2: &aws_sdk_ec2::Client, names: &Names) -> Vec<Interface> {
    let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
    let groups = ec2.describe_security_groups().send().await.unwrap();
    for group in groups.security_groups() {
        let id = group.group_id().unwrap_or_default();
        let members = ec2
            .describe_network_interfaces()
            .filters(filter("group-id", id))
            .send()
            .await
            .unwrap();
        for eni in members.network_interfaces() {
            groups_of
                .entry(eni.network_interface_id().unwrap_or_default().to_owned())
                .or_default()
                .push(names.label(id));
        }
    }
    let all = ec2.describe_network_interfaces().send().await.unwrap();
    all.network_interfaces()
        .iter()
        .map(|eni| {
            let mut groups = groups_of
                .remove(eni.network_interface_id().unwrap_or_default())
                .unwrap_or_default();
            groups.sort();
            Interface {
                instance: eni
                    .attachment()
                    .and_then(|a| a.instance_id())
                    .map(str::to_owned),
                device_index: eni.attachment().and_then(|a| a.device_index()),
                groups,
                tags: names.tags(eni.tag_set().iter().map(ec2_tag)),
            }
        })
        .collect()
}

/// Security groups by VPC and name; firebreak's (tagged `firebreak:role`) by VPC and role, so
/// two isolation groups in one VPC show as two. Rules summarized, group references by name.
async fn security_groups(ec2: &aws_sdk_ec2::Client, names: &Names, print: &mut Print) {
    let groups = ec2.describe_security_groups().send().await.unwrap();
    for group in groups.security_groups() {
        let vpc = names.label(group.vpc_id().unwrap_or_default());
        let name = names.label(group.group_id().unwrap_or_default());
        let rules = format!(
            "in={} out={}",
            rules(group.ip_permissions(), names),
            rules(group.ip_permissions_egress(), names)
        );
        let tags = names.tags(group.tags().iter().map(ec2_tag));
        match tag(group.tags().iter().map(ec2_tag), "firebreak:role") {
            Some(role) => print.add(
                format!("ec2:security-group:{vpc}:role={role}"),
                format!("{name} {rules} tags={tags}"),
            ),
            None => print.add(
                format!("ec2:security-group:{vpc}:{name}"),
                format!("{rules} tags={tags}"),
            ),
        }
    }
}

/// Rules as sorted `protocol:from-to<sources>`.
fn rules(permissions: &[IpPermission], names: &Names) -> String {
    let mut lines: Vec<String> = permissions
        .iter()
        .map(|p| {
            let mut sources: Vec<String> = p
                .ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip().map(str::to_owned))
                .chain(
                    p.ipv6_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ipv6().map(str::to_owned)),
                )
                .chain(
                    p.prefix_list_ids()
                        .iter()
                        .filter_map(|l| l.prefix_list_id().map(|id| names.scrub(id))),
                )
                .chain(
                    p.user_id_group_pairs()
                        .iter()
                        .filter_map(|g| g.group_id().map(|id| names.label(id))),
                )
                .collect();
            sources.sort();
            format!(
                "{}:{:?}-{:?}<{}>",
                p.ip_protocol().unwrap_or_default(),
                p.from_port(),
                p.to_port(),
                sources.join(",")
            )
        })
        .collect();
    lines.sort();
    format!("[{}]", lines.join(" "))
}

/// Firebreak's snapshots (any `firebreak:` tag) by what they were made from (a volume by
/// instance and device, or a snapshot they copy): one entry each, with tags and encryption.
/// The account's other snapshots only counted.
async fn snapshots(ec2: &aws_sdk_ec2::Client, names: &Names, print: &mut Print) {
    let mut others = 0;
    for snapshot in own_snapshots(ec2).await {
        if !snapshot
            .tags()
            .iter()
            .any(|t| t.key().is_some_and(|k| k.starts_with("firebreak:")))
        {
            others += 1;
            continue;
        }
        let label = names.label(snapshot.snapshot_id().unwrap_or_default());
        print.add(
            format!("ec2:snapshot:{label}"),
            format!(
                "state={} encrypted={:?} tags={}",
                snapshot.state().map_or("?", |s| s.as_str()),
                snapshot.encrypted(),
                names.tags(snapshot.tags().iter().map(ec2_tag))
            ),
        );
    }
    print.add("ec2:snapshots:others", others.to_string());
}

/// Volumes by the instance they are attached to (not by device: the clean room's evidence
/// volumes take devices in the order of snapshot ids, which differs between seeds), each with
/// where it came from, whether it is kept on termination and its tags.
async fn volumes(ec2: &aws_sdk_ec2::Client, names: &Names, print: &mut Print) {
    let volumes = ec2.describe_volumes().send().await.unwrap();
    for volume in volumes.volumes() {
        let attachment = volume.attachments().first();
        let instance = attachment
            .and_then(|a| a.instance_id())
            .map_or("(unattached)".to_owned(), |i| names.label(i));
        let from = volume
            .snapshot_id()
            .filter(|s| !s.is_empty())
            .map_or("-".to_owned(), |s| names.label(s));
        print.add(
            format!("ec2:volumes:{instance}"),
            format!(
                "from={from} size={:?} encrypted={:?} delete_on_termination={:?} tags={}",
                volume.size(),
                volume.encrypted(),
                attachment.and_then(|a| a.delete_on_termination()),
                names.tags(volume.tags().iter().map(ec2_tag))
            ),
        );
    }
}

/// Elastic IPs: associated (with which instance) or not.
async fn addresses(ec2: &aws_sdk_ec2::Client, names: &Names, print: &mut Print) {
    let addresses = ec2.describe_addresses().send().await.unwrap();
    for address in addresses.addresses() {
        let state = match address.instance_id().filter(|i| !i.is_empty()) {
            Some(instance) => format!("associated with {}", names.label(instance)),
            None if address.association_id().is_some() => "associated".to_owned(),
            None => "unassociated".to_owned(),
        };
        print.add("ec2:elastic-ips", state);
    }
}

/// Auto Scaling groups: desired capacity and members (by instance name) with their lifecycle
/// state and scale-in protection.
async fn autoscaling(autoscaling: &aws_sdk_autoscaling::Client, names: &Names, print: &mut Print) {
    let groups = autoscaling
        .describe_auto_scaling_groups()
        .send()
        .await
        .unwrap();
    for group in groups.auto_scaling_groups() {
        let mut members: Vec<String> = group
            .instances()
            .iter()
            .map(|i| {
                format!(
                    "{}:{}:protected={:?}",
                    names.label(i.instance_id().unwrap_or_default()),
                    i.lifecycle_state().map_or("?", |s| s.as_str()),
                    i.protected_from_scale_in()
                )
            })
            .collect();
        members.sort();
        print.add(
            format!(
                "autoscaling:{}",
                group.auto_scaling_group_name().unwrap_or_default()
            ),
            format!(
                "desired={:?} members=[{}]",
                group.desired_capacity(),
                members.join(", ")
            ),
        );
    }
}

/// IAM users: access key statuses (sorted), attached policies, inline policy names, console
/// password or not, tags.
async fn iam_users(iam: &aws_sdk_iam::Client, names: &Names, print: &mut Print) {
    let users = iam.list_users().send().await.unwrap();
    for user in users.users() {
        let name = user.user_name();
        let key = format!("iam:user:{name}");
        let keys = iam.list_access_keys().user_name(name).send().await.unwrap();
        let mut statuses: Vec<&str> = keys
            .access_key_metadata()
            .iter()
            .map(|k| k.status().map_or("?", |s| s.as_str()))
            .collect();
        statuses.sort();
        print.add(format!("{key}:access_keys"), statuses.join(","));
        let attached = iam
            .list_attached_user_policies()
            .user_name(name)
            .send()
            .await
            .unwrap();
        let mut arns: Vec<&str> = attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect();
        arns.sort();
        print.add(format!("{key}:attached_policies"), arns.join(","));
        let inline = iam
            .list_user_policies()
            .user_name(name)
            .send()
            .await
            .unwrap();
        let mut policies = inline.policy_names().to_vec();
        policies.sort();
        print.add(format!("{key}:inline_policies"), policies.join(","));
        let console = iam.get_login_profile().user_name(name).send().await.is_ok();
        print.add(format!("{key}:login_profile"), console.to_string());
        let tags = iam.list_user_tags().user_name(name).send().await.unwrap();
        print.add(
            format!("{key}:tags"),
            names.tags(tags.tags().iter().map(|t| (t.key(), t.value()))),
        );
    }
}

/// The roles `scripts/seed-sandbox.py` makes (`<name>-app`, `firebreak-quarantine-<name>`):
/// attached policies, inline policy names, tags. (Roles the clean room's stack makes have random
/// names in moto; the stack itself is fingerprinted by status.)
async fn iam_roles(iam: &aws_sdk_iam::Client, names: &Names, print: &mut Print) {
    let roles = iam.list_roles().send().await.unwrap();
    for role in roles.roles() {
        let name = role.role_name();
        if !(name.ends_with("-app") || name.starts_with("firebreak-quarantine-")) {
            continue;
        }
        let key = format!("iam:role:{name}");
        let attached = iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .unwrap();
        let mut arns: Vec<&str> = attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect();
        arns.sort();
        print.add(format!("{key}:attached_policies"), arns.join(","));
        let inline = iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .unwrap();
        let mut policies = inline.policy_names().to_vec();
        policies.sort();
        print.add(format!("{key}:inline_policies"), policies.join(","));
        let tags = iam.list_role_tags().role_name(name).send().await.unwrap();
        print.add(
            format!("{key}:tags"),
            names.tags(tags.tags().iter().map(|t| (t.key(), t.value()))),
        );
    }
}

/// CloudFormation stacks: name and status.
async fn stacks(cloudformation: &aws_sdk_cloudformation::Client, names: &Names, print: &mut Print) {
    let stacks = cloudformation.describe_stacks().send().await.unwrap();
    for stack in stacks.stacks() {
        print.add(
            format!(
                "cloudformation:{}",
                names.scrub(stack.stack_name().unwrap_or_default())
            ),
            stack.stack_status().map_or("?", |s| s.as_str()),
        );
    }
}

/// SSM commands (moto's ListCommands) per target instance: one entry per command, its document.
async fn ssm_commands(ssm: &aws_sdk_ssm::Client, names: &Names, print: &mut Print) {
    let mut token: Option<String> = None;
    loop {
        let page = ssm
            .list_commands()
            .set_next_token(token.take())
            .send()
            .await
            .unwrap();
        for command in page.commands() {
            let mut targets: Vec<String> = command
                .instance_ids()
                .iter()
                .map(|i| names.label(i))
                .collect();
            targets.sort();
            print.add(
                format!("ssm:commands:{}", targets.join("+")),
                command.document_name().unwrap_or_default(),
            );
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => break,
        }
    }
}

/// A description without what a reseed makes anew (mapping ids, URL ids, the code zip's hash).
fn stable(value: serde_json::Value) -> serde_json::Value {
    const NEW_EACH_SEED: &[&str] = &["UUID", "EventSourceMappingArn", "FunctionUrl", "CodeSha256"];
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(k, _)| !NEW_EACH_SEED.contains(&k.as_str()))
                .map(|(k, v)| (k, stable(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(stable).collect())
        }
        other => other,
    }
}
