//! The journal's HMAC key for workers: from Parameter Store, never from the environment (a
//! task definition or a function's configuration shows its variables to whoever reads them).
//! A key kept in Secrets Manager is read the same way, through Parameter Store's reference
//! path: `/aws/reference/secretsmanager/SECRET_NAME` (the answer is then a SecureString).

/// The journal's HMAC key from an SSM parameter (a SecureString, decrypted); the error names
/// the parameter, never a value.
pub async fn from_parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<Vec<u8>, String> {
    let answer = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading the journal key from parameter {name}: {}",
                crate::aws::error::AwsError::from_sdk("ssm", "GetParameter", e)
            )
        })?;
    let parameter = answer.parameter();
    if parameter.and_then(|p| p.r#type()) != Some(&aws_sdk_ssm::types::ParameterType::SecureString)
    {
        return Err(format!(
            "parameter {name} is not a SecureString: the journal key is a secret"
        ));
    }
    parameter
        .and_then(|p| p.value())
        .filter(|v| !v.is_empty())
        .map(|v| v.as_bytes().to_vec())
        .ok_or_else(|| format!("parameter {name} holds no key"))
}
