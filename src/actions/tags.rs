//! Tag keys firebreak writes on the resources it touches or makes. `firebreak:` is reserved for
//! this tool; every service's actions use these, so a resource is found the same way whoever
//! made it.

/// The case a resource belongs to.
pub const CASE: &str = "firebreak:case";
pub const RUN: &str = "firebreak:run";
pub const STEP: &str = "firebreak:step";
/// The idempotency key of the step that made it, so a resumed step finds its own work.
pub const IDEMPOTENCY_KEY: &str = "firebreak:idempotency-key";
pub const SOURCE_INSTANCE: &str = "firebreak:source-instance";
pub const SOURCE_VOLUME: &str = "firebreak:source-volume";
/// What a firebreak-managed security group is for: `isolation` or `untrack`.
pub const ROLE: &str = "firebreak:role";
/// On a firebreak-managed security group: `true`; its rules may only be changed by firebreak.
pub const MANAGED: &str = "firebreak:managed";
/// On an ENI: its security groups before isolation (comma-separated), written before the
/// first change so a crash mid-isolation never loses them.
pub const ORIGINAL_GROUPS: &str = "firebreak:original-groups";
/// On an instance: its instance profile ARN before it was replaced.
pub const ORIGINAL_PROFILE: &str = "firebreak:original-instance-profile";
/// On a copied snapshot or an evidence volume: the snapshot it came from.
pub const SOURCE_SNAPSHOT: &str = "firebreak:source-snapshot";
/// On an evidence volume: how it may be used (`read-only`).
pub const EVIDENCE: &str = "firebreak:evidence";
