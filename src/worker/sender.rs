//! Who sent a queue message. A decision names its decider's ARN, but anyone who may send to
//! the queue could write any ARN there; SQS itself stamps each message with its sender's
//! principal id (`SenderId`: an IAM user's id, or a role's id and the session name). A decision
//! counts only when IAM says the named identity has that id — a user by `GetUser`, an
//! assumed-role session by `GetRole` plus the session name — in the worker's own account.

use crate::aws::error::AwsError;
use crate::journal::event::Decider;

/// The decider, once `claimed` is shown to be the identity SQS says sent the message.
pub async fn verify(
    iam: &aws_sdk_iam::Client,
    claimed: &str,
    sender_id: Option<&str>,
) -> Result<Decider, String> {
    let sender_id =
        sender_id.ok_or("the message carries no SenderId, so its sender cannot be checked")?;
    let parts: Vec<&str> = claimed.splitn(6, ':').collect();
    let [_, _, service, _, account, resource] = parts[..] else {
        return Err(format!("{claimed:?} is not an ARN"));
    };
    let path: Vec<&str> = resource.split('/').collect();
    let (expected_id, arn_account) = match (service, &path[..]) {
        ("iam", ["user", .., name]) => {
            let name = *name;
            let answer = iam.get_user().user_name(name).send().await.map_err(|e| {
                format!(
                    "looking up the decider: {}",
                    AwsError::from_sdk("iam", "GetUser", e)
                )
            })?;
            let user = answer.user().ok_or("GetUser answered without a user")?;
            if user.arn() != claimed {
                return Err(format!("{claimed} is not a user of this account"));
            }
            (user.user_id().to_owned(), account)
        }
        ("sts", ["assumed-role", role, session]) => {
            let (role, session) = (*role, *session);
            let answer = iam.get_role().role_name(role).send().await.map_err(|e| {
                format!(
                    "looking up the decider: {}",
                    AwsError::from_sdk("iam", "GetRole", e)
                )
            })?;
            let role = answer.role().ok_or("GetRole answered without a role")?;
            let role_account = role.arn().split(':').nth(4).unwrap_or_default();
            if role_account != account {
                return Err(format!(
                    "{claimed} is not a session of a role of this account"
                ));
            }
            (format!("{}:{session}", role.role_id()), account)
        }
        _ => {
            return Err(format!(
                "{claimed} is neither an IAM user nor an assumed-role session: decisions through \
                 the queue come from people"
            ));
        }
    };
    if expected_id != sender_id {
        return Err(format!(
            "the message says it comes from {claimed}, but SQS says its sender is {sender_id}"
        ));
    }
    Ok(Decider {
        arn: Some(claimed.to_owned()),
        account: Some(arn_account.to_owned()),
        user_id: Some(sender_id.to_owned()),
        user: "queue".into(),
        host: "queue".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::get_role::GetRoleOutput;
    use aws_sdk_iam::operation::get_user::GetUserOutput;
    use aws_sdk_iam::types::{Role, User};
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};

    const ALICE: &str = "arn:aws:iam::123456789012:user/responders/alice";
    const SESSION: &str = "arn:aws:sts::123456789012:assumed-role/Responder/alice@example.com";

    fn iam() -> aws_sdk_iam::Client {
        let user = mock!(aws_sdk_iam::Client::get_user)
            .match_requests(|r| r.user_name() == Some("alice"))
            .then_output(|| {
                GetUserOutput::builder()
                    .user(
                        User::builder()
                            .path("/responders/")
                            .user_name("alice")
                            .user_id("AIDAALICE0000000000")
                            .arn(ALICE)
                            .create_date(aws_smithy_types::DateTime::from_secs(0))
                            .build()
                            .unwrap(),
                    )
                    .build()
            });
        let role = mock!(aws_sdk_iam::Client::get_role)
            .match_requests(|r| r.role_name() == Some("Responder"))
            .then_output(|| {
                GetRoleOutput::builder()
                    .role(
                        Role::builder()
                            .path("/")
                            .role_name("Responder")
                            .role_id("AROARESPONDER000000")
                            .arn("arn:aws:iam::123456789012:role/Responder")
                            .create_date(aws_smithy_types::DateTime::from_secs(0))
                            .build()
                            .unwrap(),
                    )
                    .build()
            });
        let interceptor = MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&user)
            .with_rule(&role);
        aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::builder()
                .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
                .region(aws_sdk_iam::config::Region::new("us-east-1"))
                .credentials_provider(aws_credential_types::Credentials::new(
                    "a", "b", None, None, "test",
                ))
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }

    #[tokio::test]
    async fn a_user_and_a_session_are_believed_only_with_their_own_sender_id() {
        let iam = iam();
        let alice = verify(&iam, ALICE, Some("AIDAALICE0000000000"))
            .await
            .unwrap();
        assert_eq!(alice.arn.as_deref(), Some(ALICE));
        assert_eq!(alice.user_id.as_deref(), Some("AIDAALICE0000000000"));
        let session = verify(&iam, SESSION, Some("AROARESPONDER000000:alice@example.com"))
            .await
            .unwrap();
        assert_eq!(session.account.as_deref(), Some("123456789012"));

        // Someone else claiming to be alice, or her role under another session name.
        let forged = verify(&iam, ALICE, Some("AIDAMALLORY00000000"))
            .await
            .unwrap_err();
        assert!(
            forged.contains("SQS says its sender is AIDAMALLORY"),
            "{forged}"
        );
        let other = verify(&iam, SESSION, Some("AROARESPONDER000000:mallory"))
            .await
            .unwrap_err();
        assert!(other.contains("mallory"), "{other}");
        // The same role name in another account is not this account's role.
        let foreign = verify(
            &iam,
            "arn:aws:sts::999999999999:assumed-role/Responder/alice@example.com",
            Some("AROARESPONDER000000:alice@example.com"),
        )
        .await
        .unwrap_err();
        assert!(
            foreign.contains("not a session of a role of this account"),
            "{foreign}"
        );
        // A user path that is not the user's.
        let moved = verify(
            &iam,
            "arn:aws:iam::123456789012:user/alice",
            Some("AIDAALICE0000000000"),
        )
        .await
        .unwrap_err();
        assert!(moved.contains("not a user of this account"), "{moved}");
        // No SenderId, no role, no root.
        assert!(verify(&iam, ALICE, None).await.is_err());
        assert!(
            verify(&iam, "arn:aws:iam::123456789012:root", Some("123456789012"))
                .await
                .unwrap_err()
                .contains("come from people")
        );
    }
}
