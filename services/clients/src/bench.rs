//! What `fitflow bench` needs of the clients' storage: filler rows in bulk,
//! written as the superuser `admin` (as a data load would be, past
//! row-level security), so that reads and searches run against a realistic
//! table size. The binary times; this module only prepares.

use sqlx::PgPool;

use crate::seal::NAME_TOKENS;

/// Clients per filler owner: the filler looks like many trainers' books.
const FILLER_BOOK: i64 = 1_000;

/// Adds `count` filler clients owned by other (made-up) trainers, a book of
/// 1,000 each. Their sealed columns are random bytes under no key and their
/// name tokens random, as real rows look to the database; the bench user
/// never reaches them, so nothing tries to open them.
pub async fn seed_filler_clients(admin: &PgPool, count: i64) -> Result<(), sqlx::Error> {
    let tokens = i32::try_from(NAME_TOKENS).unwrap_or(24);
    sqlx::query(
        "INSERT INTO clients.clients (id, trainer_id, first_name, last_name, email, email_index, \
         name_tokens, created_at) \
         SELECT gen_random_uuid(), \
                md5('fitflow-bench-owner-' || (n / $2))::uuid, \
                decode(md5('f' || n) || md5('g' || n), 'hex'), \
                decode(md5('l' || n) || md5('m' || n), 'hex'), \
                decode(md5('e' || n) || md5('h' || n), 'hex'), \
                decode(md5('i' || n) || md5('j' || n), 'hex'), \
                ARRAY(SELECT (random() * 16777215)::integer FROM generate_series(1, $3) WHERE n > 0), \
                now() - make_interval(secs => n) \
         FROM generate_series(1, $1) AS n",
    )
    .bind(count)
    .bind(FILLER_BOOK)
    .bind(tokens)
    .execute(admin)
    .await?;
    sqlx::query("ANALYZE clients.clients")
        .execute(admin)
        .await?;
    Ok(())
}
