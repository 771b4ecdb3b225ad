//! Distribution: a registry client (pull, push, login) over the OCI
//! distribution spec, and a registry server of Berth's own.

pub mod client;
pub mod server;
