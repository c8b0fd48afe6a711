//! The end-to-end tests that share one process: each file is a module. (`gateway.rs` and
//! `traces.rs` capture the process-wide logs and spans, so they are binaries of their own.)

mod complaints;
mod events;
mod http;
mod imports;
mod malformed;
mod notifications;
mod pipeline;
mod platform;
mod repairs;
mod security;
mod tickets;
mod timers;
