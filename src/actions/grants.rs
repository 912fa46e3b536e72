//! Where an action's permissions apply, declared beside the action (`Action::GRANTS`), so the
//! least-privilege policy (`firebreak policy`) is derived from the catalogue without knowing any
//! action by name. Resource patterns may hold placeholders — `{user}`, `{role}`, `{document}`,
//! `{stack}`, `{topic}` — that the policy fills with globs derived from the step's input
//! (`Action::SCOPE` says which input field gives each).

/// Some of an action's permissions, on these resources, under this condition.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub permissions: &'static [&'static str],
    pub resources: &'static [&'static str],
    /// An IAM `Condition` block, as JSON text.
    pub condition: Option<&'static str>,
}

impl Grant {
    pub const fn on(
        permissions: &'static [&'static str],
        resources: &'static [&'static str],
    ) -> Grant {
        Grant {
            permissions,
            resources,
            condition: None,
        }
    }

    pub const fn when(
        permissions: &'static [&'static str],
        resources: &'static [&'static str],
        condition: &'static str,
    ) -> Grant {
        Grant {
            permissions,
            resources,
            condition: Some(condition),
        }
    }
}

/// The IAM user an action acts on comes from its `user_name` input (absent: found at run time,
/// e.g. from an access key, so any user).
pub const USER_SCOPE: &[ScopeField] = &[ScopeField {
    placeholder: "user",
    field: "user_name",
    default: "*",
}];

/// The IAM role from `role_name`.
pub const ROLE_SCOPE: &[ScopeField] = &[ScopeField {
    placeholder: "role",
    field: "role_name",
    default: "*",
}];

/// A user or a role, from whichever is given.
pub const PRINCIPAL_SCOPE: &[ScopeField] = &[USER_SCOPE[0], ROLE_SCOPE[0]];

/// Which input field of a step fills a placeholder, and the glob when the field is absent.
#[derive(Debug, Clone, Copy)]
pub struct ScopeField {
    pub placeholder: &'static str,
    pub field: &'static str,
    pub default: &'static str,
}

/// ARN patterns of the resources firebreak acts on.
pub mod arn {
    pub const INSTANCE: &str = "arn:aws:ec2:*:*:instance/*";
    pub const VOLUME: &str = "arn:aws:ec2:*:*:volume/*";
    pub const SNAPSHOT: &str = "arn:aws:ec2:*::snapshot/*";
    pub const NETWORK_INTERFACE: &str = "arn:aws:ec2:*:*:network-interface/*";
    pub const SECURITY_GROUP: &str = "arn:aws:ec2:*:*:security-group/*";
    pub const VPC: &str = "arn:aws:ec2:*:*:vpc/*";
    pub const ELASTIC_IP: &str = "arn:aws:ec2:*:*:elastic-ip/*";
    pub const AUTO_SCALING_GROUP: &str =
        "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*";
    pub const IAM_USER: &str = "arn:aws:iam::*:user/{user}";
    pub const IAM_ROLE: &str = "arn:aws:iam::*:role/{role}";
    pub const INSTANCE_PROFILE: &str = "arn:aws:iam::*:instance-profile/*";
    /// Any role: an instance's own profile's role, passed back to EC2 by a release.
    pub const ANY_ROLE: &str = "arn:aws:iam::*:role/*";
    /// Any user: the persistence inventory reads every user's keys and console password.
    pub const ANY_USER: &str = "arn:aws:iam::*:user/*";
    pub const LAMBDA_FUNCTION: &str = "arn:aws:lambda:*:*:function:{function}";
    pub const EVENT_SOURCE_MAPPING: &str = "arn:aws:lambda:*:*:event-source-mapping:*";
    pub const TARGET_GROUP: &str = "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*";
    /// The role of a quarantine instance profile: by convention named `firebreak-quarantine…`
    /// (README), so firebreak can pass it and nothing else to EC2.
    pub const QUARANTINE_ROLE: &str = "arn:aws:iam::*:role/firebreak-quarantine*";
    /// Roles the clean room's stack makes (named after the stack, `firebreak-…`).
    pub const FIREBREAK_ROLES: &str = "arn:aws:iam::*:role/firebreak-*";
    pub const SSM_DOCUMENT: &str = "arn:aws:ssm:*:*:document/{document}";
    pub const STACK: &str = "arn:aws:cloudformation:*:*:stack/{stack}/*";
    pub const S3_BUCKET: &str = "arn:aws:s3:::{bucket}";
    /// What instances upload to a run's seal: `PREFIX/RUN_ID/collected/…` in any bucket.
    pub const SEALED_COLLECTION: &str = "arn:aws:s3:::*/*collected/*";
    pub const KMS_KEY: &str = "arn:aws:kms:*:*:key/*";
    pub const SNS_TOPIC: &str = "{topic}";
    /// What firebreak tags: instances, volumes, snapshots, interfaces, security groups.
    pub const EC2_TAGGABLE: &[&str] = &[
        INSTANCE,
        VOLUME,
        SNAPSHOT,
        NETWORK_INTERFACE,
        SECURITY_GROUP,
    ];
}

/// Conditions firebreak's grants use.
pub mod condition {
    /// Only with the case tag in the request (what firebreak makes is always tagged).
    pub const REQUEST_TAG_CASE: &str = r#"{"Null": {"aws:RequestTag/firebreak:case": "false"}}"#;
    /// Only security groups created with firebreak's role tag.
    pub const REQUEST_TAG_ROLE: &str = r#"{"Null": {"aws:RequestTag/firebreak:role": "false"}}"#;
    /// Rules change only on firebreak's own groups.
    pub const RESOURCE_TAG_MANAGED: &str =
        r#"{"StringEquals": {"aws:ResourceTag/firebreak:managed": "true"}}"#;
    /// Only the case's resources.
    pub const RESOURCE_TAG_CASE: &str = r#"{"Null": {"aws:ResourceTag/firebreak:case": "false"}}"#;
    /// Roles are passed only to EC2 (instance profiles) and to the services the clean room's
    /// template configures.
    pub const PASSED_TO_EC2: &str = r#"{"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "vpc-flow-logs.amazonaws.com"]}}"#;
    /// Only AWS's deny-all quarantine policies may be attached.
    pub const QUARANTINE_POLICIES: &str = r#"{"ArnLike": {"iam:PolicyARN": ["arn:aws*:iam::aws:policy/AWSCompromisedKeyQuarantine*", "arn:aws*:iam::aws:policy/AWSDenyAll"]}}"#;
    /// KMS only through EC2 (re-encrypting snapshot copies).
    pub const KMS_VIA_EC2: &str = r#"{"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}"#;
}
