//! API keys and whether credentials are required.

use super::*;

impl Projector {
    pub(super) fn access(&mut self, _at: At, event: &Event) -> Result<(), ProjectionError> {
        match event {
            Event::ApiKeyCreated {
                key,
                role,
                account,
                secret_hash,
            } => {
                let view = ApiKeyView {
                    key: *key,
                    role: *role,
                    account: *account,
                    secret_hash: *secret_hash,
                };
                self.put(Key::new(keys::API_KEY).u64(key.0).build(), enc(&view));
            }
            Event::ApiKeyRevoked { key } => self.del(Key::new(keys::API_KEY).u64(key.0).build()),
            Event::CredentialsRequired { required } => {
                self.put(keys::CREDENTIALS_REQUIRED.to_vec(), enc(required))
            }
            _ => {} // not this view's
        }
        Ok(())
    }
}
