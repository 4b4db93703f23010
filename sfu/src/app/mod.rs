//! The server binary's parts: configuration, logging, HTTP, static pages.

pub mod config;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod web;
