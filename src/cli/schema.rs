use super::Exit;

pub fn run() -> Exit {
    let schema = crate::schema::runbook_schema();
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).expect("a schema serializes")
    );
    Exit::Ok
}
