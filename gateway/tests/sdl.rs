//! The committed SDL is the schema the gateway serves: a change to the API shows up
//! as a diff of `schemas/graphql/schema.graphql` in review.

#[test]
fn committed_sdl_matches_the_served_schema() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/graphql/schema.graphql"
    );
    let now = tape_gateway::sdl();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &now).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == now,
        "schemas/graphql/schema.graphql drifted from the gateway's schema; if the change is deliberate, rerun with UPDATE_GOLDEN=1\n--- committed\n{committed}\n--- now\n{now}"
    );
}
