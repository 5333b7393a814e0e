//! The vault (crypto-shredding, ADR 11) on both backends: personal data is
//! stored encrypted with its person's key and read in the clear; once the
//! key is destroyed it reads as erased, nothing personal is recorded about
//! the person again, the chain still verifies, and the key stays destroyed.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use trellis_commands::personal::DomainPersonalData;
use trellis_eventstore::vault::{KeyState, KeyStore, Vault};
use trellis_eventstore::{
    AppendRequest, Checkpoint, CommandMeta, ContentDigest, Error, EventStore, ExpectedVersion,
    NewEvent, Problem, StreamId,
};
use trellis_tests::{Backend, Kind, stream};

const NOTE: &str = "Opened the Fjordmark call with a sharp question";

async fn keys_of(backend: &Backend) -> Arc<dyn KeyStore> {
    match backend.kind {
        Kind::Postgres => Arc::new(
            trellis_eventstore::postgres::PostgresStore::connect(
                &trellis_eventstore::postgres::PostgresConfig::new(&backend.database().url),
            )
            .await
            .unwrap(),
        ),
        Kind::Sqlite => Arc::new(
            trellis_eventstore::sqlite::SqliteStore::open(backend.data_dir())
                .await
                .unwrap(),
        ),
    }
}

fn vault(backend: &Backend, keys: Arc<dyn KeyStore>) -> Arc<Vault> {
    Arc::new(Vault::new(
        backend.store.clone(),
        keys,
        Arc::new(DomainPersonalData),
    ))
}

fn feedback(note: &str) -> NewEvent {
    NewEvent::new(
        "FeedbackGiven",
        2,
        json!({"feedback_id": uuid::Uuid::now_v7(), "leader_id": uuid::Uuid::now_v7(),
               "competency_id": uuid::Uuid::now_v7(), "kind": "praise", "note": note,
               "visibility": "shared", "given_on": "2026-02-02"}),
        Utc::now(),
    )
}

fn measured() -> NewEvent {
    NewEvent::new(
        "PerformanceMeasured",
        1,
        json!({"measurement_id": uuid::Uuid::now_v7(), "metric": "calls_made",
               "period": "2026-W05", "value": 12.0, "source": "manual"}),
        Utc::now(),
    )
}

async fn append(store: &dyn EventStore, s: &StreamId, event: NewEvent) -> Result<(), Error> {
    store
        .append(
            s,
            ExpectedVersion::Any,
            &CommandMeta::new("leader", Utc::now()),
            &[event],
        )
        .await
        .map(|_| ())
}

async fn notes(store: &dyn EventStore, s: &StreamId) -> Vec<Value> {
    store
        .read_stream(s, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload["note"].clone())
        .collect()
}

async fn personal_data_is_stored_encrypted_and_read_in_the_clear(kind: Kind) {
    let backend = Backend::new(kind).await;
    let vault = vault(&backend, keys_of(&backend).await);
    let rep = stream("rep");
    append(&*vault, &rep, feedback(NOTE)).await.unwrap();

    let stored = notes(&*backend.store, &rep).await;
    let sealed = stored[0].as_str().unwrap();
    assert!(sealed.starts_with("enc:v2:t:"), "{sealed}");
    assert!(!sealed.contains("Fjordmark"));
    assert_eq!(notes(&*vault, &rep).await, [json!(NOTE)]);
    // Read in global order as JSON text, the same (on PostgreSQL once no
    // older transaction of the cluster is running).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let all = loop {
        let all = vault.read_all_json(Checkpoint::START, 10).await.unwrap();
        if !all.is_empty() || std::time::Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(all[0].payload.contains(NOTE), "{}", all[0].payload);

    // A read of the stream keeps the digest of the stored form; a scan of
    // the whole log does not, and a check of what it read says so rather
    // than calling the event altered.
    let mut scratch = Vec::new();
    let raw = backend.store.read_stream(&rep, 0, 10).await.unwrap();
    let from_stream = vault.read_stream(&rep, 0, 10).await.unwrap();
    assert_eq!(
        from_stream[0].content_digest,
        ContentDigest::Kept(raw[0].stored_digest(&mut scratch).unwrap())
    );
    assert_eq!(all[0].content_digest, ContentDigest::NotKept);
    let scanned = vault.read_all(Checkpoint::START, 10).await.unwrap();
    assert_eq!(scanned[0].payload["note"], json!(NOTE));
    assert_eq!(scanned[0].content_digest, ContentDigest::NotKept);
    let mut verifier = trellis_eventstore::chain::Verifier::new();
    verifier.check(&scanned[0]);
    let findings = verifier.finish().findings;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].problem, Problem::NotAsStored);

    // The chain is over the ciphertext: it verifies read raw or decrypted.
    let vaulted: Arc<dyn EventStore> = vault;
    for store in [&backend.store, &vaulted] {
        let report = trellis_eventstore::verify(&**store, 100).await.unwrap();
        assert!(report.is_intact(), "{report:?}");
    }
    backend.cleanup().await;
}

async fn a_command_handed_over_is_stored_encrypted_and_its_persons_cipher_serves_the_next(
    kind: Kind,
) {
    let backend = Backend::new(kind).await;
    let counting = Arc::new(CountingKeys {
        inner: keys_of(&backend).await,
        calls: Default::default(),
    });
    let vault = vault(&backend, counting.clone());
    let rep = stream("rep");
    let notes_written = [NOTE, "Asked for the budget owner by name"];
    for (n, note) in notes_written.iter().enumerate() {
        vault
            .append_owned(AppendRequest {
                stream: rep.clone(),
                expected: ExpectedVersion::Exact(2 * n as u64),
                meta: CommandMeta::new("leader", Utc::now()),
                events: vec![feedback(note), measured()],
            })
            .await
            .unwrap();
    }
    let stored = notes(&*backend.store, &rep).await;
    let sealed: Vec<&str> = stored.iter().filter_map(Value::as_str).collect();
    assert_eq!(sealed.len(), 2, "{stored:?}");
    for text in &sealed {
        assert!(text.starts_with("enc:v2:t:"), "{text}");
        assert!(
            !text.contains("Fjordmark") && !text.contains("budget"),
            "{text}"
        );
    }
    // The key store was asked once, for the first command; the second was
    // sealed with the cipher kept from it, and both open.
    assert_eq!(counting.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let read: Vec<Value> = notes(&*vault, &rep)
        .await
        .into_iter()
        .filter(|note| !note.is_null())
        .collect();
    assert_eq!(read, [json!(notes_written[0]), json!(notes_written[1])]);
    let report = trellis_eventstore::verify(&*backend.store, 100)
        .await
        .unwrap();
    assert!(report.is_intact(), "{report:?}");

    // Erased through the vault, the kept cipher goes too: nothing personal
    // is recorded again, handed over or not.
    let person = trellis_domain::personal::owner(rep.as_str(), "FeedbackGiven", &json!({}))
        .expect("a rep's stream names its person");
    vault.erase_data_key(person, Utc::now()).await.unwrap();
    let refused = vault
        .append_owned(AppendRequest {
            stream: rep.clone(),
            expected: ExpectedVersion::Any,
            meta: CommandMeta::new("leader", Utc::now()),
            events: vec![feedback("After the erasure")],
        })
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::InvalidInput(_)), "{refused:?}");
    assert_eq!(notes(&*backend.store, &rep).await.len(), 4);
    backend.cleanup().await;
}

async fn an_erased_persons_data_reads_as_erased_and_nothing_personal_is_recorded_again(kind: Kind) {
    let backend = Backend::new(kind).await;
    let keys = keys_of(&backend).await;
    let vault = vault(&backend, keys.clone());
    let (rep, other) = (stream("rep"), stream("rep"));
    append(&*vault, &rep, feedback(NOTE)).await.unwrap();
    append(&*vault, &other, feedback("Kept for the other rep"))
        .await
        .unwrap();

    let person = rep.entity_uuid().unwrap();
    // Erased through the vault, which drops the key it kept for writing.
    let at = vault.erase_data_key(person, Utc::now()).await.unwrap();
    assert_eq!(
        keys.erase_data_key(person, Utc::now()).await.unwrap(),
        at,
        "erasing twice keeps the first time"
    );
    assert_eq!(notes(&*vault, &rep).await, [json!("(erased)")]);
    assert_eq!(
        notes(&*vault, &other).await,
        [json!("Kept for the other rep")]
    );
    let report = trellis_eventstore::verify(&*vault, 100).await.unwrap();
    assert!(report.is_intact(), "{report:?}");

    let refused = append(&*vault, &rep, feedback("More")).await.unwrap_err();
    assert_refused(&refused, "erased");
    // Another process's vault, which never wrote about them, refuses too.
    let elsewhere = self::vault(&backend, keys.clone());
    let refused = append(&*elsewhere, &rep, feedback("More"))
        .await
        .unwrap_err();
    assert_refused(&refused, "erased");
    append(&*vault, &rep, measured())
        .await
        .expect("figures are still recorded under the id");
    assert!(matches!(
        keys.data_keys(&[person], true).await.unwrap().get(&person),
        Some(KeyState::Erased(_))
    ));
    backend.cleanup().await;
}

async fn an_erased_key_is_never_brought_back_nor_a_key_deleted(kind: Kind) {
    let backend = Backend::new(kind).await;
    let keys = keys_of(&backend).await;
    let (kept, erased) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    keys.data_keys(&[kept, erased], true).await.unwrap();
    keys.erase_data_key(erased, Utc::now()).await.unwrap();
    let table = match kind {
        Kind::Postgres => "trellis.personal_data_keys",
        Kind::Sqlite => "personal_data_keys",
    };
    let key = match kind {
        Kind::Postgres => {
            "'\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea"
        }
        Kind::Sqlite => "zeroblob(32)",
    };
    for (sql, why) in [
        (
            format!(
                "UPDATE {table} SET data_key = {key}, erased_at = NULL WHERE person = '{erased}'"
            ),
            "brought back",
        ),
        (
            format!("UPDATE {table} SET data_key = {key} WHERE person = '{kept}'"),
            "replaced",
        ),
        (
            format!("DELETE FROM {table} WHERE person = '{kept}'"),
            "never deleted",
        ),
    ] {
        let refused = backend.try_modify(&sql).await.expect_err(&sql);
        assert!(refused.contains(why), "{sql}: {refused}");
    }
    // The key kept is still the one it was.
    assert!(matches!(
        keys.data_keys(&[kept], false).await.unwrap().get(&kept),
        Some(KeyState::Live(_))
    ));
    backend.cleanup().await;
}

/// A page of hundreds of events is opened on every core: each note with
/// its own person's key, an erased person's as erased, the stored form's
/// digest kept, whether the page is read parsed or as text.
async fn a_large_page_opens_every_note_with_its_own_persons_key(kind: Kind) {
    let backend = Backend::new(kind).await;
    let vault = vault(&backend, keys_of(&backend).await);
    let reps: Vec<StreamId> = (0..10).map(|_| stream("rep")).collect();
    for (r, rep) in reps.iter().enumerate() {
        let events: Vec<NewEvent> = (0..40)
            .map(|i| feedback(&format!("Note {i} for rep {r}")))
            .collect();
        vault
            .append(
                rep,
                ExpectedVersion::Any,
                &CommandMeta::new("leader", Utc::now()),
                &events,
            )
            .await
            .unwrap();
    }
    let erased = 3;
    vault
        .erase_data_key(reps[erased].entity_uuid().unwrap(), Utc::now())
        .await
        .unwrap();
    let expected = |stream: &StreamId, version: u64| -> String {
        let r = reps.iter().position(|s| s == stream).unwrap();
        if r == erased {
            "(erased)".to_owned()
        } else {
            format!("Note {} for rep {r}", version - 1)
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let page = loop {
        let page = vault.read_all(Checkpoint::START, 1000).await.unwrap();
        if page.len() >= 400 || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(page.len(), 400);
    for event in &page {
        assert_eq!(
            event.payload["note"],
            json!(expected(&event.stream_id, event.stream_version)),
            "{:?} version {}",
            event.stream_id,
            event.stream_version
        );
    }
    let text = vault.read_all_json(Checkpoint::START, 1000).await.unwrap();
    assert_eq!(text.len(), 400);
    for (event, parsed) in text.iter().zip(&page) {
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(
            payload["note"],
            json!(expected(&event.stream_id, event.stream_version))
        );
        assert_eq!(event.event_id, parsed.event_id);
        assert_eq!(event.content_digest, ContentDigest::NotKept);
    }
    // A scan of streams opens a large page on every core too, and each
    // event keeps the digest of its own stored form.
    let opened = vault.scan_streams(None, 1000).await.unwrap();
    let stored = backend.store.scan_streams(None, 1000).await.unwrap();
    assert_eq!(opened.len(), 400);
    let mut scratch = Vec::new();
    for (opened, stored) in opened.iter().zip(&stored) {
        assert_eq!(opened.event_id, stored.event_id);
        assert_eq!(
            opened.content_digest,
            ContentDigest::Kept(stored.stored_digest(&mut scratch).unwrap()),
            "each event keeps the digest of its own stored form"
        );
    }
    let vaulted: Arc<dyn EventStore> = vault;
    let report = trellis_eventstore::verify(&*vaulted, 1000).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    backend.cleanup().await;
}

/// `refused` is bad input whose message names `why`.
fn assert_refused(refused: &Error, why: &str) {
    assert!(
        matches!(refused, Error::InvalidInput(m) if m.contains(why)),
        "refused for another reason than {why:?}: {refused:?}"
    );
}

async fn a_text_shaped_like_encrypted_data_is_refused(kind: Kind) {
    let backend = Backend::new(kind).await;
    let vault = vault(&backend, keys_of(&backend).await);
    let team = stream("team");
    // Both the current shape and the one written before version 2.
    for prefix in ["enc:v2:", "enc:v1:"] {
        let forged = NewEvent::new(
            "TeamRenamed",
            1,
            json!({"team_id": team.entity_uuid().unwrap(), "name": format!("{prefix}n:AAAA")}),
            Utc::now(),
        );
        let refused = append(&*vault, &team, forged).await.unwrap_err();
        assert_refused(&refused, prefix);
    }
    backend.cleanup().await;
}

/// The store below the vault sees ciphertext, so the vault checks what
/// every store checks while the text is still in the clear: a NUL in a
/// personal note is refused, alone and in a batch (where its neighbour is
/// still recorded).
async fn a_nul_in_a_personal_text_is_refused_before_it_is_encrypted(kind: Kind) {
    let backend = Backend::new(kind).await;
    let vault = vault(&backend, keys_of(&backend).await);
    let rep = stream("rep");
    let refused = append(&*vault, &rep, feedback("before\u{0}after"))
        .await
        .unwrap_err();
    assert_refused(&refused, "NUL");
    let request = |event: NewEvent| trellis_eventstore::AppendRequest {
        stream: rep.clone(),
        expected: ExpectedVersion::Any,
        meta: CommandMeta::new("leader", Utc::now()),
        events: vec![event],
    };
    let outcomes = vault
        .append_batch(vec![
            request(feedback("before\u{0}after")),
            request(feedback(NOTE)),
        ])
        .await;
    assert_refused(outcomes[0].as_ref().unwrap_err(), "NUL");
    assert!(outcomes[1].is_ok(), "{:?}", outcomes[1]);
    assert_eq!(notes(&*vault, &rep).await, [json!(NOTE)]);
    backend.cleanup().await;
}

/// A key store that counts the calls made to it.
#[derive(Debug)]
struct CountingKeys {
    inner: Arc<dyn KeyStore>,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl KeyStore for CountingKeys {
    async fn data_keys(
        &self,
        persons: &[uuid::Uuid],
        make_missing: bool,
    ) -> Result<std::collections::HashMap<uuid::Uuid, KeyState>, Error> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.data_keys(persons, make_missing).await
    }

    async fn erase_data_key(
        &self,
        person: uuid::Uuid,
        at: chrono::DateTime<Utc>,
    ) -> Result<chrono::DateTime<Utc>, Error> {
        self.inner.erase_data_key(person, at).await
    }
}

async fn a_batch_about_new_people_fetches_their_keys_at_once_and_an_erased_one_spares_the_rest(
    kind: Kind,
) {
    let backend = Backend::new(kind).await;
    let keys = keys_of(&backend).await;
    let erased = stream("rep");
    keys.erase_data_key(erased.entity_uuid().unwrap(), Utc::now())
        .await
        .unwrap();
    let counting = Arc::new(CountingKeys {
        inner: keys,
        calls: Default::default(),
    });
    let vault = vault(&backend, counting.clone());
    let newcomers: Vec<StreamId> = (0..6).map(|_| stream("rep")).collect();
    let request = |s: &StreamId, note: &str| trellis_eventstore::AppendRequest {
        stream: s.clone(),
        expected: ExpectedVersion::Exact(0),
        meta: CommandMeta::new("leader", Utc::now()),
        events: vec![feedback(note)],
    };
    let mut requests: Vec<_> = newcomers
        .iter()
        .enumerate()
        .map(|(i, s)| request(s, &format!("{NOTE} #{i}")))
        .collect();
    requests.insert(3, request(&erased, "About an erased rep"));

    let outcomes = vault.append_batch(requests).await;

    assert_eq!(
        counting.calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one call to the key store for the whole batch"
    );
    assert_eq!(outcomes.len(), 7);
    assert_refused(outcomes[3].as_ref().unwrap_err(), "erased");
    assert_eq!(backend.store.stream_version(&erased).await.unwrap(), 0);
    for (i, s) in newcomers.iter().enumerate() {
        let outcome = &outcomes[if i < 3 { i } else { i + 1 }];
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(notes(&*vault, s).await, [json!(format!("{NOTE} #{i}"))]);
    }
    // Cached for writing now: the next command about them asks no one
    // (a read always asks, so that an erasure elsewhere shows at once).
    let before = counting.calls.load(std::sync::atomic::Ordering::SeqCst);
    append(&*vault, &newcomers[0], feedback("Again"))
        .await
        .unwrap();
    assert_eq!(
        counting.calls.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    backend.cleanup().await;
}

/// Two processes making keys for the same new people at the same moment
/// end with one key each, the one both were answered with and the one read
/// back: whoever lost the race to add a key takes the winner's.
async fn keys_made_at_once_for_the_same_new_people_by_two_processes_are_one_key_each(kind: Kind) {
    let backend = Backend::new(kind).await;
    let (one, other) = (keys_of(&backend).await, keys_of(&backend).await);
    for _ in 0..20 {
        let persons: Vec<uuid::Uuid> = (0..32).map(|_| uuid::Uuid::now_v7()).collect();
        let (a, b) = tokio::join!(
            one.data_keys(&persons, true),
            other.data_keys(&persons, true)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let stored = one.data_keys(&persons, false).await.unwrap();
        for person in &persons {
            assert!(
                matches!(stored.get(person), Some(KeyState::Live(_))),
                "{person} has a key"
            );
            assert_eq!(a.get(person), stored.get(person), "{person}: the first");
            assert_eq!(b.get(person), stored.get(person), "{person}: the second");
        }
    }
    backend.cleanup().await;
}

/// On PostgreSQL a new person's key commits without waiting for its flush
/// (the command encrypted with it, committed after it, flushes it), and
/// the connection goes back to the pool as it was: the log's own commits
/// still wait for theirs, also after making a key failed.
#[tokio::test]
async fn a_new_persons_key_is_not_flushed_alone_and_the_connection_is_left_as_it_was() {
    let backend = Backend::new(Kind::Postgres).await;
    let admin = backend.database().superuser().await;
    let refused = uuid::Uuid::now_v7();
    // What `synchronous_commit` is while a key, then an event, is written.
    admin
        .batch_execute(&format!(
            "CREATE TABLE public.seen (n serial, what text, setting text);
             GRANT ALL ON public.seen, public.seen_n_seq TO PUBLIC;
             CREATE FUNCTION public.note_setting() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF TG_TABLE_NAME = 'personal_data_keys' THEN
                     IF NEW.person = '{refused}' THEN
                         RAISE EXCEPTION 'refused by the test';
                     END IF;
                 END IF;
                 INSERT INTO public.seen (what, setting)
                      VALUES (TG_TABLE_NAME, current_setting('synchronous_commit'));
                 RETURN NEW;
             END $$;
             CREATE TRIGGER note_key AFTER INSERT ON trellis.personal_data_keys
                 FOR EACH ROW EXECUTE FUNCTION public.note_setting();
             CREATE TRIGGER note_event AFTER INSERT ON trellis.events
                 FOR EACH ROW EXECUTE FUNCTION public.note_setting();"
        ))
        .await
        .unwrap();
    // One connection: every call below shares it.
    let mut config = trellis_eventstore::postgres::PostgresConfig::new(&backend.database().url);
    config.pool_size = 1;
    let store = trellis_eventstore::postgres::PostgresStore::connect(&config)
        .await
        .unwrap();

    assert!(store.data_keys(&[refused], true).await.is_err());
    let person = uuid::Uuid::now_v7();
    let made = store.data_keys(&[person], true).await.unwrap();
    assert!(matches!(made.get(&person), Some(KeyState::Live(_))));
    append(&store, &stream("rep"), measured()).await.unwrap();

    let seen: Vec<(String, String)> = admin
        .query("SELECT what, setting FROM public.seen ORDER BY n", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        seen,
        [
            ("personal_data_keys".to_owned(), "off".to_owned()),
            ("events".to_owned(), "on".to_owned())
        ]
    );
    let kept = store.data_keys(&[person, refused], false).await.unwrap();
    assert_eq!(kept.get(&person), made.get(&person), "the key was kept");
    assert!(!kept.contains_key(&refused), "the refused key was not made");
    drop(store);
    backend.cleanup().await;
}

crate::http::on_each_backend!(
    personal_data_is_stored_encrypted_and_read_in_the_clear,
    a_command_handed_over_is_stored_encrypted_and_its_persons_cipher_serves_the_next,
    an_erased_persons_data_reads_as_erased_and_nothing_personal_is_recorded_again,
    an_erased_key_is_never_brought_back_nor_a_key_deleted,
    a_text_shaped_like_encrypted_data_is_refused,
    a_nul_in_a_personal_text_is_refused_before_it_is_encrypted,
    a_large_page_opens_every_note_with_its_own_persons_key,
    a_batch_about_new_people_fetches_their_keys_at_once_and_an_erased_one_spares_the_rest,
    keys_made_at_once_for_the_same_new_people_by_two_processes_are_one_key_each,
);
