//! End-to-end tests of the FitFlow stack: real services in-process over real
//! mTLS, a throwaway PostgreSQL database and an OpenBao dev server.

mod abuse;
mod accounts;
mod audit_complete;
mod audit_trail;
mod billing;
mod billing_accounts;
mod billing_attack;
mod billing_hostile;
mod billing_payments;
mod billing_remittances;
mod bootstrap;
mod clients;
mod clients_billing_export;
mod clients_hostile;
mod clients_share_email;
mod commands;
mod database;
mod directory;
mod documentation;
mod documentation_hostile;
mod documentation_size;
mod floods;
mod identity_attack;
mod identity_support;
mod jwks;
mod key_rotation;
mod mfa;
mod operators;
mod profile;
mod python_client;
mod python_support;
mod retries;
mod revocation;
mod scheduling;
mod scheduling_attack;
mod scheduling_billing;
mod scheduling_calendar;
mod scheduling_mail;
mod scheduling_slots;
mod sealed_fields;
mod sessions;
mod tenancy;
mod tenancy_attack;
mod tenancy_hostile;
mod tenancy_mail;
mod tenancy_truncated;
mod tokens;
#[macro_use]
mod transport;
// After `transport`, whose reflection macro it uses.
mod platform;
