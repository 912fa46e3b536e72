//! Which interfaces the instance has and which groups each is in, read exactly.

use super::super::interfaces::{COLLECTION_PREFIX, interfaces_in_groups};
use super::super::{ActionError, tag, tags};
use crate::actions::StepContext;

/// The VPC's firebreak groups this isolation uses.
pub(super) struct FirebreakGroups {
    pub(super) isolation: String,
    pub(super) untrack: Option<String>,
    /// Collection groups found on the interfaces.
    pub(super) collection: Vec<String>,
}

/// An interface of the instance, as DescribeNetworkInterfaces reports it.
pub(super) struct Interface {
    pub(super) id: String,
    pub(super) groups: Vec<String>,
    /// The `firebreak:original-groups` tag, left by an earlier (perhaps interrupted) isolation.
    pub(super) tagged_original: Option<Vec<String>>,
    /// In a group named like a collection group (a hint to look the tags up).
    pub(super) hints_collection: bool,
}

impl Interface {
    /// The groups to restore later. The tag is trusted only while the interface sits in
    /// firebreak's groups alone (an earlier isolation got that far and wrote it); otherwise
    /// anyone who can tag the interface could have written it, and the groups it has now are
    /// the truth.
    pub(super) fn trusted_original(&self, membership: &Membership) -> Vec<String> {
        match &self.tagged_original {
            Some(tagged) if membership.only_firebreak(&self.id) => tagged.clone(),
            _ => self
                .groups
                .iter()
                .filter(|g| !membership.firebreak.contains(g))
                .cloned()
                .collect(),
        }
    }
}

/// Which interfaces of the instance are in which groups, read with the `group-id` filter (an
/// interface's own groups exactly, whatever the `Groups` field shows).
pub(super) struct Membership {
    pub(super) firebreak: Vec<String>,
    pub(super) in_isolation: Vec<String>,
    pub(super) in_untrack: Vec<String>,
    pub(super) in_collection: Vec<String>,
    /// In any group that is not firebreak's.
    pub(super) in_other: Vec<String>,
}

impl Membership {
    pub(super) async fn read(
        ctx: &StepContext,
        instance_id: &str,
        interfaces: &[Interface],
        groups: &FirebreakGroups,
    ) -> Result<Membership, ActionError> {
        let mut firebreak = vec![groups.isolation.clone()];
        firebreak.extend(groups.untrack.clone());
        firebreak.extend(groups.collection.iter().cloned());
        let mut others: Vec<String> = interfaces
            .iter()
            .flat_map(|e| e.groups.iter().cloned())
            .filter(|g| !firebreak.contains(g))
            .collect();
        others.sort();
        others.dedup();
        let in_untrack = match &groups.untrack {
            Some(untrack) => {
                interfaces_in_groups(ctx, instance_id, std::slice::from_ref(untrack)).await?
            }
            None => Vec::new(),
        };
        Ok(Membership {
            in_isolation: interfaces_in_groups(
                ctx,
                instance_id,
                std::slice::from_ref(&groups.isolation),
            )
            .await?,
            in_untrack,
            in_collection: interfaces_in_groups(ctx, instance_id, &groups.collection).await?,
            in_other: interfaces_in_groups(ctx, instance_id, &others).await?,
            firebreak,
        })
    }

    pub(super) fn exactly_isolated(&self, eni: &String) -> bool {
        self.in_isolation.contains(eni)
            && !self.in_untrack.contains(eni)
            && !self.in_collection.contains(eni)
            && !self.in_other.contains(eni)
    }

    pub(super) fn only_firebreak(&self, eni: &String) -> bool {
        (self.in_isolation.contains(eni) || self.in_untrack.contains(eni))
            && !self.in_other.contains(eni)
    }
}

pub(super) async fn instance_interfaces(
    ctx: &StepContext,
    instance_id: &str,
) -> Result<Vec<Interface>, ActionError> {
    let attached = super::super::attached_interfaces(ctx, instance_id).await?;
    let mut interfaces: Vec<(i32, Interface)> = attached
        .iter()
        .filter_map(|eni| {
            let id = eni.network_interface_id()?.to_owned();
            let index = eni.attachment().and_then(|a| a.device_index()).unwrap_or(0);
            let groups = eni
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
                .collect();
            let hints_collection = eni.groups().iter().any(|g| {
                g.group_name()
                    .is_some_and(|n| n.starts_with(COLLECTION_PREFIX))
            });
            let tagged_original = tag(eni.tag_set(), tags::ORIGINAL_GROUPS).map(|value| {
                value
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            });
            Some((
                index,
                Interface {
                    id,
                    groups,
                    tagged_original,
                    hints_collection,
                },
            ))
        })
        .collect();
    if interfaces.is_empty() {
        return Err(ActionError::Failed(format!(
            "instance {instance_id} has no network interfaces"
        )));
    }
    interfaces.sort_by_key(|(index, _)| *index);
    Ok(interfaces.into_iter().map(|(_, eni)| eni).collect())
}
