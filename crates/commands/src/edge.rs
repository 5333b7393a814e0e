//! Where a write request becomes a domain command, and the one way every
//! write goes from there: extract → authorize as far as the route says →
//! parse → context → authorize on the state read → execute → respond.
//!
//! Each wire request is parsed by one conversion, `impl TryFrom<Edge<'_,
//! wire::X>> for …`, beside its handler in [`crate::routes`]: into the team,
//! competency or standard command itself, or, on a rep's stream, into an
//! [`OnRep`] (the command, or the command once a fact it needs about another
//! stream is read). The conversion checks what only it knows about (the ids
//! after the entity's own in the path, the acting leader, the fields, in
//! that order) and makes the ids of what the command creates. A handler
//! names its body and where its command goes ([`WriteRequest::admin`],
//! [`WriteRequest::on_rep`]); the rest is here.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::Response;
use serde::de::DeserializeOwned;
use trellis_domain::leader::LeaderErased;
use trellis_domain::{
    Aggregate, CompetencyAggregate, CompetencyId, CompetencyStatus, LeaderAggregate, LeaderCommand,
    LeaderId, LeaderState, MeasurementId, MetricName, PeriodKind, RepAggregate, RepCommand, RepId,
    RepState, StandardAggregate, StandardId, StandardStatus, TeamAggregate, TeamId,
};
use trellis_http::auth::Claims;
use trellis_http::extract::{PathIds, Principal, RawJson};
use trellis_http::problem::{ApiError, Fields};
use uuid::Uuid;

use crate::cache::{Cacheable, Loaded};
use crate::extract::WriteHeaders;
use crate::policy::{self, RouteAccess, Scope, acting_leader, admin_write, rep_command};
use crate::respond::{answer_rep, respond, stream};
use crate::state::CommandState;
use crate::write::{Stored, WriteCtx, execute, load_fact};

/// A write request as its handler receives it: the caller (401 without a
/// good token), the path, the `If-Match` / `Idempotency-Key` headers and the
/// JSON body, extracted in that order. The body is parsed into `B` only
/// once the caller is known to be allowed what the route does (as far as
/// the route alone says), so a refused caller hears 403, not what their
/// body lacks.
#[derive(Debug)]
pub struct WriteRequest<B> {
    app: CommandState,
    claims: Claims,
    path: PathIds,
    headers: WriteHeaders,
    body: RawJson,
    parses_into: std::marker::PhantomData<fn() -> B>,
}

impl<B: DeserializeOwned + Send> FromRequest<CommandState> for WriteRequest<B> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &CommandState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let Principal(claims) = Principal::from_request_parts(&mut parts, app).await?;
        let path = PathIds::from_request_parts(&mut parts, app).await?;
        let headers = WriteHeaders::from_request_parts(&mut parts, app).await?;
        let body = RawJson::from_request(Request::from_parts(parts, body), app).await?;
        Ok(WriteRequest {
            app: app.clone(),
            claims,
            path,
            headers,
            body,
            parses_into: std::marker::PhantomData,
        })
    }
}

/// Which entity's stream a command goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// A new one: its id is `ctx.new_id(category)` ("team", "rep", …), so a
    /// retried keyed request names the same entity.
    New,
    /// The one the path names, in `{category}_id` (`team_id`, `rep_id`, …).
    Named,
}

/// What a conversion from the wire request `B` may use besides the body.
#[derive(Debug)]
pub struct Edge<'a, B> {
    /// The request's body.
    pub body: B,
    /// Who writes, under which command id, at what time: `ctx.now` for a
    /// command that carries the time, `ctx.new_id(label)` for the id of what
    /// it creates.
    pub ctx: &'a WriteCtx,
    /// The entity whose stream the command goes to.
    pub id: Uuid,
    /// Whether that entity is new or named by the path.
    pub entity: Entity,
    path: &'a PathIds,
}

impl<B> Edge<'_, B> {
    /// The id in the path parameter `name`, after the entity's own (404 when
    /// it is not a UUID).
    pub fn path_id<T: From<Uuid>>(&self, name: &str) -> Result<T, ApiError> {
        self.path.uuid(name).map(T::from)
    }

    /// The leader a leader-authored record is attributed to: a leader is
    /// themselves, an admin or a service names one ([`acting_leader`]).
    pub fn acting_leader(&self, given: Option<Uuid>) -> Result<LeaderId, ApiError> {
        acting_leader(&self.ctx.claims, given.map(LeaderId::from_uuid))
    }
}

/// One field checked on its own: its value, or a 422 naming it (what
/// [`Fields`] answers for that one field).
pub fn field<T, E: std::fmt::Display>(name: &str, result: Result<T, E>) -> Result<T, ApiError> {
    let mut f = Fields::default();
    let value = f.check(name, result);
    f.finish()?;
    Ok(trellis_http::valid!(value))
}

/// A command on a rep's stream, as its request parses: ready, or built once
/// the fact it needs about another stream is read (after parsing, so a bad
/// request costs no read).
pub enum OnRep {
    /// Needs nothing more.
    Ready(RepCommand),
    /// Needs to know whether the team exists.
    GivenTeam(TeamId, Box<dyn FnOnce(bool) -> RepCommand + Send>),
    /// Needs the competency's status.
    GivenCompetency(
        CompetencyId,
        Box<dyn FnOnce(CompetencyStatus) -> RepCommand + Send>,
    ),
    /// Needs the standard's status.
    GivenStandard(
        StandardId,
        Box<dyn FnOnce(StandardStatus) -> RepCommand + Send>,
    ),
    /// Needs the kinds of period the standards measure the metric in
    /// ([`crate::measured`]); the period kind is the one asked for.
    /// The metric, the kind of period and the value measured.
    GivenMetric(
        MetricName,
        (PeriodKind, f64),
        Box<dyn FnOnce((Vec<PeriodKind>, f64)) -> RepCommand + Send>,
    ),
    /// Needs, when the fact it corrects is one of the rep's measurements,
    /// the largest target its metric's standards have had, so that a
    /// corrected value is judged as a measurement is ([`crate::measured`]).
    /// The rep, the fact and the new value.
    GivenCorrectedMeasurement(
        RepId,
        Uuid,
        f64,
        Box<dyn FnOnce(Option<f64>) -> RepCommand + Send>,
    ),
}

impl std::fmt::Debug for OnRep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OnRep::Ready(command) => f.debug_tuple("Ready").field(command).finish(),
            OnRep::GivenTeam(id, _) => f.debug_tuple("GivenTeam").field(id).finish(),
            OnRep::GivenCompetency(id, _) => f.debug_tuple("GivenCompetency").field(id).finish(),
            OnRep::GivenStandard(id, _) => f.debug_tuple("GivenStandard").field(id).finish(),
            OnRep::GivenMetric(metric, measured, _) => f
                .debug_tuple("GivenMetric")
                .field(metric)
                .field(measured)
                .finish(),
            OnRep::GivenCorrectedMeasurement(rep, fact, value, _) => f
                .debug_tuple("GivenCorrectedMeasurement")
                .field(rep)
                .field(fact)
                .field(value)
                .finish(),
        }
    }
}

impl OnRep {
    /// The command, with the fact it needs.
    async fn command(self, app: &CommandState) -> Result<RepCommand, ApiError> {
        Ok(match self {
            OnRep::Ready(command) => command,
            OnRep::GivenTeam(id, then) => {
                then(fact::<TeamAggregate>(app, id.as_uuid()).await?.version > 0)
            }
            OnRep::GivenCompetency(id, then) => then(
                fact::<CompetencyAggregate>(app, id.as_uuid())
                    .await?
                    .state
                    .status(),
            ),
            OnRep::GivenStandard(id, then) => then(
                fact::<StandardAggregate>(app, id.as_uuid())
                    .await?
                    .state
                    .status(),
            ),
            OnRep::GivenMetric(metric, (kind, value), then) => {
                let catalogue = app
                    .measured()
                    .covering(app.store(), [(&metric, kind, value)])
                    .await?;
                then(crate::measured::measures_of(&catalogue, &metric))
            }
            OnRep::GivenCorrectedMeasurement(rep, corrected, value, then) => {
                // As a fact, from the cache as the write will find it: a
                // recorded measurement's metric and period never change.
                let loaded = fact::<RepAggregate>(app, rep.as_uuid()).await?;
                let measured = loaded.state.rep().and_then(|r| {
                    r.measurement(MeasurementId::from_uuid(corrected))
                        .map(|m| (r.metric(m.metric).clone(), m.period.kind()))
                });
                match measured {
                    Some((metric, kind)) => {
                        let catalogue = app
                            .measured()
                            .covering(app.store(), [(&metric, kind, value)])
                            .await?;
                        // A metric no standard measures any more (recorded
                        // before the rule): nothing to judge it against.
                        then(
                            catalogue
                                .contains_key(&metric)
                                .then(|| crate::measured::measures_of(&catalogue, &metric).1),
                        )
                    }
                    // Not one of their measurements: the domain says what it is.
                    None => then(None),
                }
            }
        })
    }
}

/// The entity `id` of aggregate `A`, as a fact a rep command needs: from the
/// cache when read in the last second ([`load_fact`]).
async fn fact<A: Stored>(app: &CommandState, id: Uuid) -> Result<Loaded<A::State>, ApiError>
where
    A::State: Cacheable,
{
    load_fact::<A>(app, &stream(A::CATEGORY, id)?).await
}

impl<B: DeserializeOwned> WriteRequest<B> {
    /// A team, competency or standard command (aggregate `A`), by an admin or
    /// a service granted `scope`: authorize, parse, execute; 201 with the new
    /// entity's id, or 200.
    pub async fn admin<A>(self, scope: Scope, entity: Entity) -> Result<Response, ApiError>
    where
        A: Stored + Send + Sync + 'static,
        A::State: Cacheable,
        A::Event: Send + Sync,
        A::Command: Clone + Send + Sync + 'static + for<'a> TryFrom<Edge<'a, B>, Error = ApiError>,
    {
        self.admin_given::<A, _, _>(scope, entity, |_, _, command| async { Ok(command) })
            .await
    }

    /// [`WriteRequest::admin`] for a command that needs a fact from beyond
    /// its own stream: `given` completes the parsed command, with the
    /// entity's id, before it executes (whether another team has a name).
    pub async fn admin_given<A, F, Fut>(
        self,
        scope: Scope,
        entity: Entity,
        given: F,
    ) -> Result<Response, ApiError>
    where
        A: Stored + Send + Sync + 'static,
        A::State: Cacheable,
        A::Event: Send + Sync,
        A::Command: Clone + Send + Sync + 'static + for<'a> TryFrom<Edge<'a, B>, Error = ApiError>,
        F: FnOnce(CommandState, Uuid, A::Command) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<A::Command, ApiError>> + Send,
    {
        admin_write(&self.claims, scope)?;
        let Parsed {
            app,
            ctx,
            id,
            command,
        } = self.parse::<A::Command>(A::CATEGORY, entity)?;
        let stream = stream(A::CATEGORY, id)?;
        // From the read of the others to the append: another such command
        // of the category, here or in another process, waits, then reads
        // this one's result (two teams given one name at once, or two
        // overlapping standards, would each find the other absent). On a
        // task of its own, so a caller that stops waiting (a client gone)
        // cannot let go of the category while its append may still land.
        let locked = tokio::spawn(async move {
            let held = app.store().exclusive(A::CATEGORY).await?;
            let command = given(app.clone(), id, command).await?;
            let written = execute::<A>(&app, &ctx, &stream, |_| Ok(command.clone())).await;
            drop(held);
            written
        });
        let written = locked
            .await
            .map_err(|e| ApiError::Internal(format!("a {} command failed: {e}", A::CATEGORY)))??;
        let created = entity == Entity::New;
        Ok(respond(created, created.then_some(id), written))
    }

    /// A command on a rep's stream: authorize the caller as far as the
    /// route says (`access`, [`policy::rep_route`]), parse, read the fact it
    /// needs, execute, authorizing the caller on the rep as loaded
    /// ([`rep_command`]); answered as [`answer_rep`] says.
    pub async fn on_rep(self, entity: Entity, access: RouteAccess) -> Result<Response, ApiError>
    where
        OnRep: for<'a> TryFrom<Edge<'a, B>, Error = ApiError>,
    {
        let rep = match entity {
            Entity::Named => Some(RepId::from_uuid(self.path.uuid("rep_id")?)),
            Entity::New => None,
        };
        policy::rep_route(&self.claims, rep, access)?;
        let Parsed {
            app,
            ctx,
            id,
            command,
        } = self.parse::<OnRep>(RepAggregate::CATEGORY, entity)?;
        let command = command.command(&app).await?;
        if policy::rep_access(&command).route() != access {
            return Err(ApiError::Internal(format!(
                "the route was authorized as {access:?}, but its command asks {:?}",
                policy::rep_access(&command)
            )));
        }
        let rep_id = RepId::from_uuid(id);
        let written =
            execute::<RepAggregate>(&app, &ctx, &stream(RepAggregate::CATEGORY, id)?, |loaded| {
                rep_command(&ctx.claims, rep_id, &loaded.state, &command)?;
                Ok(command.clone())
            })
            .await?;
        Ok(answer_rep(&command, written))
    }

    /// Erases the personal data of the person the path names (`person_id`,
    /// a rep or a leader): an admin's write. The person's key is destroyed
    /// and every holder forgets them *before* the erasure is appended
    /// (`PersonalDataErased` on a rep's stream, `LeaderErased` on a
    /// leader's), so whoever reads that event (the projections, the relay,
    /// the webhooks) already reads the person's earlier data as erased. A
    /// retry after a failure part way finishes the job; one after success
    /// answers the first outcome.
    pub async fn erase_person(self) -> Result<Response, ApiError>
    where
        OnRep: for<'a> TryFrom<Edge<'a, B>, Error = ApiError>,
    {
        policy::erasure(&self.claims)?;
        let person = self.path.uuid("person_id")?;
        let app = self.app.clone();
        let value = self.body.parse::<B>()?;
        let ctx = WriteCtx::new(&app, self.claims, self.headers, self.body.fingerprint);
        let command = OnRep::try_from(Edge {
            body: value,
            ctx: &ctx,
            id: person,
            entity: Entity::Named,
            path: &self.path,
        })?
        .command(&app)
        .await?;
        let RepCommand::ErasePersonalData { erased, now } = &command else {
            return Err(ApiError::Internal(
                "an erasure request parsed into another command".into(),
            ));
        };
        let Some(erasure) = app.erasure() else {
            return Err(ApiError::Unavailable(
                "this Trellis cannot erase people: it was started without the log's key store"
                    .into(),
            ));
        };
        let rep_stream = stream(RepAggregate::CATEGORY, person)?;
        let leader_stream = stream(LeaderAggregate::CATEGORY, person)?;
        let rep = crate::write::load::<RepAggregate>(&app, &rep_stream).await?;
        let leader = crate::write::load::<LeaderAggregate>(&app, &leader_stream).await?;
        // A leader: named by a team (the read models know), or erased
        // already. An id may name a rep and a leader both (a rep promoted
        // under the same id): both are erased.
        let mut names = match (&leader.state, &erasure.leaders) {
            (LeaderState::Present, Some(leaders)) => leaders.leader_names(person).await.map_err(|e| {
                tracing::warn!(error = %e, %person, "could not ask the read models about a leader");
                ApiError::Unavailable(format!(
                    "could not tell whether {person} is a leader just now; try again in a moment"
                ))
            })?,
            _ => Vec::new(),
        };
        let is_leader = matches!(leader.state, LeaderState::Erased { .. }) || !names.is_empty();
        let is_rep = rep.state != RepState::NotJoined;
        // The reason stays readable: checked against every name the person
        // still has before anything is destroyed, so a refusal leaves no
        // part of the erasure done.
        if let RepState::Joined(joined) = &rep.state
            && joined.erased_on.is_none()
        {
            names.push(joined.name.as_str().to_owned());
            names.extend(joined.former_names.iter().map(|n| n.as_str().to_owned()));
        }
        trellis_domain::rep::check_erasure_reason(
            erased.reason.as_str(),
            names.iter().map(String::as_str),
        )?;
        if !is_rep && !is_leader {
            return Err(ApiError::NotFound(format!(
                "there is no rep or leader {person}: check the id in the person's page, \
                 in GET /v1/reps or in GET /v1/teams (a leader assigned a moment ago may \
                 take a second to be known)"
            )));
        }
        let leader_command = is_leader.then(|| LeaderCommand::ErasePersonalData {
            erased: LeaderErased {
                leader_id: LeaderId::from_uuid(person),
                reason: erased.reason.clone(),
                on: erased.on,
            },
            now: *now,
        });
        // The leader's erasure, when the id is a rep's too, is a command of
        // its own: a retry with the same Idempotency-Key finds both.
        let leader_ctx = WriteCtx {
            command_id: if is_rep {
                Uuid::new_v5(&ctx.command_id, b"leader")
            } else {
                ctx.command_id
            },
            ..ctx.clone()
        };
        let rep_replay = ctx.replay(&app).await?;
        let rep_open = is_rep && RepAggregate::decide(&rep.state, command.clone()).is_ok();
        let leader_replay = match &leader_command {
            Some(_) => leader_ctx.replay(&app).await?,
            None => None,
        };
        let leader_open = leader_command.as_ref().is_some_and(|command| {
            leader_replay.is_none()
                && LeaderAggregate::decide(&leader.state, command.clone()).is_ok()
        });
        if is_rep {
            rep_command(&ctx.claims, RepId::from_uuid(person), &rep.state, &command)?;
        }
        if (rep_open && rep_replay.is_none()) || leader_open {
            erasure.keys.erase_data_key(person, ctx.now).await?;
            for holder in &erasure.holders {
                holder.forget(person).await.map_err(|e| {
                    ApiError::Unavailable(format!(
                        "the person's data key is destroyed, but their {} could not be \
                         deleted ({e}); send the same request again to finish",
                        holder.holds()
                    ))
                })?;
            }
        }
        // A rep erased before, whose leader part is still to do: only that.
        let rep_written = if is_rep && (rep_open || rep_replay.is_some() || !leader_open) {
            let rep_id = RepId::from_uuid(person);
            Some(
                execute::<RepAggregate>(&app, &ctx, &rep_stream, |loaded| {
                    rep_command(&ctx.claims, rep_id, &loaded.state, &command)?;
                    Ok(command.clone())
                })
                .await?,
            )
        } else {
            None
        };
        // A leader erased before, whose rep part was just done: only that.
        let leader_written = match leader_command {
            Some(command) if leader_open || leader_replay.is_some() || !is_rep => Some(
                execute::<LeaderAggregate>(&app, &leader_ctx, &leader_stream, |_| {
                    Ok(command.clone())
                })
                .await?,
            ),
            _ => None,
        };
        match (rep_written, leader_written) {
            (Some(written), _) => Ok(answer_rep(&command, written)),
            (None, Some(written)) => Ok(respond(false, None, written)),
            (None, None) => Err(ApiError::Internal(
                "an erasure found a rep or a leader but wrote to neither".into(),
            )),
        }
    }

    /// The entity's id (the path's, parsed first: a bad one is a 404 before
    /// anything else; or a new one), the write's context, and the command
    /// the body parses into.
    fn parse<C>(self, category: &str, entity: Entity) -> Result<Parsed<C>, ApiError>
    where
        C: for<'a> TryFrom<Edge<'a, B>, Error = ApiError>,
    {
        let named = match entity {
            Entity::Named => Some(self.path.uuid(&format!("{category}_id"))?),
            Entity::New => None,
        };
        let value = self.body.parse::<B>()?;
        let ctx = WriteCtx::new(&self.app, self.claims, self.headers, self.body.fingerprint);
        let id = named.unwrap_or_else(|| ctx.new_id(category));
        let command = C::try_from(Edge {
            body: value,
            ctx: &ctx,
            id,
            entity,
            path: &self.path,
        })?;
        Ok(Parsed {
            app: self.app,
            ctx,
            id,
            command,
        })
    }
}

/// A request parsed: its service, its context, the entity it goes to, and
/// its command.
struct Parsed<C> {
    app: CommandState,
    ctx: WriteCtx,
    id: Uuid,
    command: C,
}
