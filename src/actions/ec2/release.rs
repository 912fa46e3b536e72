//! `ec2.release_isolation`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionError, tag, tags};
use crate::actions::StepContext;
use crate::actions::grants::{Grant, arn};
use crate::actions::prior::{chosen_instances, not_recorded, recorded_outputs};
use crate::actions::{Action, Execute};

/// One interface to restore: as `ec2.isolate_instance` reports it (other fields are ignored).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IsolatedInterface {
    pub network_interface_id: String,
    pub original_groups: Vec<String>,
}

/// Put back the original security groups of isolated interfaces: from the `interfaces` outputs of an isolation step, from the journal of the run that isolated, or from the tags isolation left on the instance's interfaces.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseIsolation {
    /// The `interfaces` outputs of an `ec2.isolate_instance` step.
    #[serde(default)]
    pub interfaces: Option<Vec<IsolatedInterface>>,
    /// The journal of the run that isolated (verified before it is read).
    #[serde(default)]
    pub journal: Option<String>,
    /// With `journal`: the isolation step's id (default: every `ec2.isolate_instance` step).
    #[serde(default)]
    pub step: Option<String>,
    /// With `journal`: the instances whose interfaces to release; required when the journal
    /// isolated more than one (releasing one instance of a fleet must not release the others).
    #[serde(default)]
    pub instance_ids: Option<Vec<String>>,
    /// Restore from the `firebreak:original-groups` tags on this instance's interfaces.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// With `instance_ids`: an instance the journal did not isolate (a containment that only
    /// took its role away, or stopped before isolating) has nothing to release here; it is
    /// listed in `not_isolated` instead of refusing the step. For a runbook that has already
    /// refused any instance the journal never contained (`ec2.restore_instance` does).
    #[serde(default)]
    pub skip_not_isolated: bool,
}

impl Action for ReleaseIsolation {
    const NAME: &'static str = "ec2.release_isolation";
    const SUMMARY: &'static str =
        "put back the original security groups of isolated network interfaces";
    const CALLS: &'static [&'static str] = &[
        "ec2:DescribeNetworkInterfaces",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:DeleteTags",
    ];
    const PERMISSIONS: &'static [&'static str] = Self::CALLS;
    const GRANTS: &'static [Grant] = &[
        Grant::on(
            &["ec2:ModifyNetworkInterfaceAttribute"],
            &[arn::NETWORK_INTERFACE, arn::SECURITY_GROUP],
        ),
        Grant::on(&["ec2:DeleteTags"], &[arn::NETWORK_INTERFACE]),
    ];
}

impl Execute for ReleaseIsolation {
    async fn execute(&self, ctx: &StepContext) -> Result<Value, ActionError> {
        if self.instance_ids.is_some() && self.journal.is_none() {
            return Err(ActionError::Input(
                "`instance_ids` chooses among a journal's instances; give it with `journal`".into(),
            ));
        }
        let mut not_isolated = Vec::new();
        let (source, interfaces) = match (&self.interfaces, &self.journal, &self.instance_id) {
            (Some(list), None, None) => ("input", list.clone()),
            (None, Some(path), None) => {
                let found = from_journal(
                    path,
                    self.step.as_deref(),
                    self.instance_ids.as_deref(),
                    self.skip_not_isolated,
                    ctx.journal_key(),
                )?;
                not_isolated = found.not_isolated;
                ("journal", found.interfaces)
            }
            (None, None, Some(id)) => ("tags", from_tags(ctx, id).await?),
            _ => {
                return Err(ActionError::Input(
                    "give exactly one of `interfaces`, `journal` or `instance_id`".into(),
                ));
            }
        };
        if interfaces.is_empty() && !not_isolated.is_empty() {
            return Ok(json!({
                "source": source, "restored": [], "already_restored": [],
                "not_isolated": not_isolated,
            }));
        }
        if interfaces.is_empty() {
            return Err(ActionError::Failed(format!(
                "no isolated interfaces found in the {source}; nothing to release"
            )));
        }
        // Interfaces already in their original groups (an earlier release) are left alone.
        let ids: Vec<String> = interfaces
            .iter()
            .map(|e| e.network_interface_id.clone())
            .collect();
        let targets: Vec<&str> = ids.iter().map(String::as_str).collect();
        let described = ctx
            .call("ec2", "DescribeNetworkInterfaces", &targets, || {
                ctx.clients()
                    .ec2
                    .describe_network_interfaces()
                    .set_network_interface_ids(Some(ids.clone()))
                    .send()
            })
            .await?;
        let groups_now = |id: &str| -> Option<Vec<String>> {
            let eni = described
                .network_interfaces()
                .iter()
                .find(|e| e.network_interface_id() == Some(id))?;
            let mut groups: Vec<String> = eni
                .groups()
                .iter()
                .filter_map(|g| g.group_id())
                .map(str::to_owned)
                .collect();
            groups.sort();
            Some(groups)
        };
        let mut restored = Vec::new();
        let mut already = Vec::new();
        for eni in &interfaces {
            let mut wanted = eni.original_groups.clone();
            wanted.sort();
            if groups_now(&eni.network_interface_id).as_ref() == Some(&wanted) {
                already.push(json!(eni.network_interface_id));
                continue;
            }
            if eni.original_groups.is_empty() {
                return Err(ActionError::Failed(format!(
                    "no original groups recorded for {}; refusing to leave it without groups",
                    eni.network_interface_id
                ))
                .with_outputs(json!({ "restored": restored })));
            }
            let targets: Vec<&str> = std::iter::once(eni.network_interface_id.as_str())
                .chain(eni.original_groups.iter().map(String::as_str))
                .collect();
            let result = ctx
                .ec2_change("ModifyNetworkInterfaceAttribute", &targets, |dry_run| {
                    ctx.clients()
                        .ec2
                        .modify_network_interface_attribute()
                        .dry_run(dry_run)
                        .network_interface_id(&eni.network_interface_id)
                        .set_groups(Some(eni.original_groups.clone()))
                        .send()
                })
                .await;
            if let Err(error) = result {
                return Err(error.with_outputs(json!({ "restored": restored, "source": source })));
            }
            // The record of what to restore is spent: a later isolation must record the groups
            // the interface has then, not these.
            let untagged = ctx
                .ec2_change("DeleteTags", &[&eni.network_interface_id], |dry_run| {
                    ctx.clients()
                        .ec2
                        .delete_tags()
                        .dry_run(dry_run)
                        .resources(&eni.network_interface_id)
                        .tags(
                            aws_sdk_ec2::types::Tag::builder()
                                .key(tags::ORIGINAL_GROUPS)
                                .build(),
                        )
                        .send()
                })
                .await;
            if let Err(error) = untagged {
                return Err(error.with_outputs(json!({ "restored": restored, "source": source })));
            }
            restored.push(json!({
                "network_interface_id": eni.network_interface_id,
                "groups": eni.original_groups,
            }));
        }
        Ok(json!({
            "source": source, "restored": restored, "already_restored": already,
            "not_isolated": not_isolated,
        }))
    }
}

/// What a journal isolated of the chosen instances.
struct FromJournal {
    interfaces: Vec<IsolatedInterface>,
    /// Chosen instances it did not isolate (only when told to skip them).
    not_isolated: Vec<String>,
}

/// The interfaces an earlier run isolated on the chosen instances, from its verified journal.
fn from_journal(
    path: &str,
    step: Option<&str>,
    wanted: Option<&[String]>,
    skip_not_isolated: bool,
    key: Option<&[u8]>,
) -> Result<FromJournal, ActionError> {
    let outputs = recorded_outputs(path, <super::IsolateInstance as Action>::NAME, step, key)?;
    let mut recorded: Vec<String> = Vec::new();
    for instance in outputs.iter().filter_map(|o| o["instance_id"].as_str()) {
        if !recorded.iter().any(|r| r == instance) {
            recorded.push(instance.to_owned());
        }
    }
    let mut not_isolated: Vec<String> = Vec::new();
    let isolated_named: Vec<String>;
    let mut wanted = wanted;
    if let Some(named) = wanted {
        let unknown = not_recorded(&recorded, named);
        if !unknown.is_empty() && !skip_not_isolated {
            return Err(ActionError::Input(format!(
                "journal {path} isolated no interface of {}; nothing was released",
                unknown.join(", ")
            )));
        }
        not_isolated = unknown.into_iter().map(str::to_owned).collect();
        isolated_named = named
            .iter()
            .filter(|id| recorded.contains(id))
            .cloned()
            .collect();
        if isolated_named.is_empty() {
            return Ok(FromJournal {
                interfaces: Vec::new(),
                not_isolated,
            });
        }
        wanted = Some(&isolated_named);
    }
    let chosen = chosen_instances(path, &recorded, wanted)?;
    let mut found: Vec<IsolatedInterface> = Vec::new();
    for eni in outputs
        .iter()
        .filter(|o| {
            o["instance_id"]
                .as_str()
                .is_some_and(|i| chosen.iter().any(|c| c == i))
        })
        .flat_map(|o| o["interfaces"].as_array().into_iter().flatten())
    {
        if let Ok(eni) = serde_json::from_value::<IsolatedInterface>(eni.clone())
            && !found
                .iter()
                .any(|f| f.network_interface_id == eni.network_interface_id)
        {
            found.push(eni);
        }
    }
    Ok(FromJournal {
        interfaces: found,
        not_isolated,
    })
}

/// The interfaces of an instance that carry the original-groups tag isolation writes.
async fn from_tags(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Vec<IsolatedInterface>, ActionError> {
    Ok(super::attached_interfaces(ctx, instance_id)
        .await?
        .iter()
        .filter_map(|eni| {
            let groups = tag(eni.tag_set(), tags::ORIGINAL_GROUPS)?;
            Some(IsolatedInterface {
                network_interface_id: eni.network_interface_id()?.to_owned(),
                original_groups: groups
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect())
}
