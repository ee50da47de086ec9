//! Integration tests: a real server on port 0, real HTTP and WebSocket clients.

mod auth;
mod busy_clients;
mod cli;
mod current_printer;
mod files;
mod folders;
mod helpers;
mod host_scripts;
mod last_job;
mod live;
mod octoprint;
mod pipeline;
mod preview;
mod printer_admin;
mod queue;
mod resume;
mod revocation;
mod slicing;
mod slow_clients;
mod web;
mod ws;
