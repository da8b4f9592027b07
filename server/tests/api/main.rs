//! Integration tests against a real server on a free port (`common::spawn_app`), each with
//! a data directory and database of its own, in one binary so the suite links once. The
//! browser tests (`tests/browser/`) are a binary of their own: they need a built site and
//! Chromium.

mod common;

mod abuse;
mod auth;
mod channels;
mod cluster;
mod connections;
mod moderation;
mod native_ws;
mod operations;
mod party;
mod skeleton;
mod socketio;
mod storage;
