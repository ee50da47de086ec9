//! Integration tests: a real server on port 0, real HTTP and WebSocket clients.

mod auth;
mod cli;
mod files;
mod helpers;
mod live;
mod octoprint;
mod pipeline;
mod preview;
mod printer_admin;
mod queue;
mod slicing;
mod web;
mod ws;
