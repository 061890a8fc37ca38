//! Integration tests: the real CLI on the fixtures, the runtime on real bundles, and the
//! fixtures run from plain sources and from bundles side by side.

mod accuracy;
mod analysis;
mod cli;
mod config;
mod consumer;
mod damage;
mod corpora;
mod differential;
mod flavours;
mod incremental;
mod installer;
mod library;
mod runtime;
mod support;
mod watch;
