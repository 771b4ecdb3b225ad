//! Distribution commands: `registry serve`.

use anyhow::Result;
use berth_registry::server::{self, ServerConfig};

use crate::cli::RegistryServeArgs;

pub fn serve(a: RegistryServeArgs) -> Result<i32> {
    let tls = a.tls_cert.zip(a.tls_key);
    server::serve(ServerConfig {
        addr: a.addr,
        root: a.root,
        htpasswd: a.htpasswd,
        token_auth: a.token_auth,
        tls,
    })?;
    Ok(0)
}
