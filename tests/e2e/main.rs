//! End-to-end tests: they run the built `berth` as root, the way a user does,
//! and check the result from inside the container and from the host.

mod common;

mod as_typed;
mod build;
mod cleanup;
mod daemon;
mod daemon_attack;
mod daemon_build;
mod daemon_compose;
mod daemon_events;
mod daemon_images;
mod daemon_tls;
mod distribution;
mod exec_attack;
mod fault_inject;
mod heal;
mod images;
mod isolation;
mod keyring;
mod layers;
mod library;
mod lifecycle;
mod limits;
mod localnet;
mod network;
mod parity;
mod parity_rest;
mod private_state;
mod registry_server;
mod run;
mod seccomp;
mod tty;
mod userns;
mod volumes;
