//! Chain of custody that leaves the host: a run's journal and evidence sealed in an S3 bucket
//! with Object Lock in COMPLIANCE mode, and the journal's head signed with an asymmetric KMS
//! key.
//!
//! What each part proves: the hash chain proves the order of records; the sealed objects
//! (named by their head, written with `If-None-Match: *`, retained in COMPLIANCE mode) prove
//! what the journal held when each left the host, and nobody — the runner included — can change
//! or delete them before their retention ends; a signed statement proves the KMS key's holder
//! vouched for a head at a time. None of it proves the runner was honest when it wrote.
//!
//! Files: `target` (`s3://BUCKET/PREFIX` and the key names), `bucket` (is it fit to hold
//! evidence), `store` (uploads read back with `HeadObject`), `statement` (signing and checking
//! heads), `presign` (uploads straight from an instance), `sealer` (what a run seals and when), `remote` (reading a seal back), `agreement`
//! (does a local journal agree with its seal).

pub mod agreement;
pub mod bucket;
pub mod presign;
pub mod remote;
pub mod sealer;
pub mod statement;
pub mod store;
pub mod target;
pub mod upload_script;

pub use sealer::Sealer;
pub use target::SealTarget;

/// Now, RFC 3339 UTC: when a statement is signed, and what retention dates are compared with.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
