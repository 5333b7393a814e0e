//! A believable demo organisation for the first run, recorded through the
//! same HTTP command path as real use.
//!
//! [`seed`] drives the write API (`trellis_commands::api`) with one request per command,
//! each under an admin's, a leader's, a rep's or the CRM's own token, so
//! every event has the actor a real organisation would give it. Everything
//! is deterministic for a seed and a `today`: the numbers come from a seeded
//! generator, and every request carries an `Idempotency-Key` derived from
//! the seed and its place in the script, so the ids the service derives from
//! it are the same on every run (event ids and recorded times are not: the
//! service makes those).
//!
//! The organisation: two teams (SDRs and account executives), one leader
//! each, a framework of six competencies, six standards (quality and
//! quantity, weekly and monthly, an at-most one, a revision half-way, ramps
//! for new hires), and twelve reps with a story each over about nine months.
//! Seed it into an empty store: a second seed with another `today` would
//! reuse idempotency keys with other bodies and be refused.
//!
//! It must not reach around the write API: every fact it records is a
//! request a person could have sent.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use chrono::{Datelike, Days, NaiveDate};
use serde_json::{Value, json};
use tower::ServiceExt;
use trellis_commands::CommandState;
use trellis_domain::{Period, PeriodKind};
use trellis_http::HttpState;
use trellis_http::auth::{Claims, Role};
use uuid::Uuid;

use crate::rng::Rng;

mod rng;

/// How long the demo's tokens are valid.
pub const TOKEN_DAYS: i64 = 30;

/// How many weeks of history the demo records.
pub const WEEKS: u64 = 39;

/// Why seeding stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo step {step:?} was refused with {status}: {body}")]
    Refused {
        step: String,
        status: u16,
        body: String,
    },
    #[error("demo step {step:?}: the answer had no {what}")]
    Unexpected { step: String, what: String },
}

/// A team of the demo.
#[derive(Debug, Clone)]
pub struct DemoTeam {
    pub id: Uuid,
    pub name: String,
    pub leader_id: Uuid,
}

/// A leader of the demo, with a token of their own.
#[derive(Debug, Clone)]
pub struct DemoLeader {
    pub id: Uuid,
    pub name: String,
    pub team_ids: Vec<Uuid>,
    pub token: String,
}

/// A rep of the demo and the story the data tells about them.
#[derive(Debug, Clone)]
pub struct DemoRep {
    pub id: Uuid,
    pub name: String,
    /// The team they are on now.
    pub team_id: Uuid,
    pub role: String,
    pub start_date: NaiveDate,
    pub story: String,
    pub token: String,
}

/// What [`seed`] created: ids, names and a token per role.
#[derive(Debug, Clone)]
pub struct DemoOrg {
    pub seed: u64,
    pub today: NaiveDate,
    pub teams: Vec<DemoTeam>,
    pub leaders: Vec<DemoLeader>,
    pub reps: Vec<DemoRep>,
    pub competencies: Vec<(Uuid, String)>,
    pub standards: Vec<(Uuid, String)>,
    pub admin_token: String,
    pub auditor_token: String,
    /// Requests sent to the command service.
    pub requests: usize,
}

impl DemoOrg {
    /// The rep whose token the demo hands out (the fast grower).
    pub fn featured_rep(&self) -> &DemoRep {
        &self.reps[0]
    }

    /// `(who, sign-in URL)` for each role, for `trellis demo` to print.
    /// `base` is the server's URL without a trailing slash.
    pub fn sign_in_links(&self, base: &str) -> Vec<(String, String)> {
        let link = |token: &str| format!("{base}/login?token={token}");
        let mut links = vec![("admin".to_owned(), link(&self.admin_token))];
        for leader in &self.leaders {
            links.push((format!("leader {}", leader.name), link(&leader.token)));
        }
        let rep = self.featured_rep();
        links.push((format!("rep {}", rep.name), link(&rep.token)));
        links.push(("auditor".to_owned(), link(&self.auditor_token)));
        links
    }

    pub fn rep(&self, name: &str) -> Option<&DemoRep> {
        self.reps.iter().find(|r| r.name == name)
    }
}

// ---------------------------------------------------------------------------
// The cast

const COMPETENCIES: [(&str, &str, [&str; 5]); 6] = [
    (
        "Discovery",
        "Uncovers the buyer's situation, pain and priorities with open questions before pitching.",
        [
            "Pitches before asking; misses the buyer's context",
            "Asks scripted questions; follows up rarely",
            "Asks open questions and confirms the main pain",
            "Quantifies pain and impact; maps stakeholders",
            "Shapes the buyer's view of the problem; others learn from their calls",
        ],
    ),
    (
        "Objection handling",
        "Hears objections out, isolates the real concern and answers it with evidence.",
        [
            "Argues or concedes at the first objection",
            "Answers with features; rarely checks the concern",
            "Acknowledges, clarifies and answers common objections",
            "Anticipates objections and uses proof from similar customers",
            "Turns objections into reasons to buy; coaches peers",
        ],
    ),
    (
        "Product knowledge",
        "Knows the product, its use cases and the competition well enough to advise.",
        [
            "Needs help with basic product questions",
            "Knows the core features",
            "Explains the main use cases and pricing",
            "Handles technical and competitive questions alone",
            "Recognised expert; feeds the product team",
        ],
    ),
    (
        "Communication",
        "Writes and speaks clearly, listens actively, and adapts to the audience.",
        [
            "Unclear; talks over the buyer",
            "Clear in writing, rambles on calls",
            "Clear and concise; listens more than talks",
            "Adapts tone and depth to each stakeholder",
            "Persuasive in any setting, from SDR call to board",
        ],
    ),
    (
        "Resilience",
        "Keeps activity and spirit up through rejection and slow weeks.",
        [
            "Activity drops after rejection",
            "Recovers with encouragement",
            "Steady through ordinary ups and downs",
            "Keeps pace and morale in hard months",
            "Lifts the team when it is hard",
        ],
    ),
    (
        "Strategic thinking",
        "Plans territory, accounts and time for the biggest outcome.",
        [
            "Works whatever comes next",
            "Keeps a weekly plan",
            "Prioritises accounts by fit and timing",
            "Builds account plans with multi-threading",
            "Shapes the territory strategy with the leader",
        ],
    ),
];

const DISCOVERY: usize = 0;
const OBJECTIONS: usize = 1;
const PRODUCT: usize = 2;
const COMMUNICATION: usize = 3;
const RESILIENCE: usize = 4;
const STRATEGY: usize = 5;

/// The standards, by index.
const CALL_QUALITY: usize = 0;
const CRM_INCOMPLETE: usize = 1;
const MEETINGS: usize = 2;
const CALLS: usize = 3;
const PIPELINE: usize = 4;
const REVENUE: usize = 5;

const SDR: &str = "SDR";
const AE: &str = "AE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    FastGrower,
    NewHire,
    Steady,
    PlanMet,
    MovesOn,
    Obstacle,
    StrongCloserWeakQuality,
    SolidAe,
    Declining,
    SteadyAe,
    Promoted,
    NewAe,
}

impl Story {
    fn describe(self) -> &'static str {
        match self {
            Story::FastGrower => "a fast grower: quality first, then quantity",
            Story::NewHire => "a new hire on the ramp",
            Story::Steady => "steady and reliable",
            Story::PlanMet => "recovered on an improvement plan (met)",
            Story::MovesOn => "an improvement plan not met; moved on",
            Story::Obstacle => "blocked by a tools outage; a support request open",
            Story::StrongCloserWeakQuality => "a strong closer whose call quality lags",
            Story::SolidAe => "a solid account executive",
            Story::Declining => "slipping: resilience falling, coaching overdue",
            Story::SteadyAe => "steady account executive",
            Story::Promoted => "promoted from SDR to AE, moved teams",
            Story::NewAe => "a new account executive on the pipeline ramp",
        }
    }

    /// Quality multiplier (1.0 = exactly the target) at `t` in the window.
    fn quality(self, t: f64, x: f64) -> f64 {
        match self {
            Story::FastGrower => 0.9 + 0.32 * t,
            Story::NewHire | Story::NewAe => 0.9 + 0.14 * x,
            Story::Steady => 1.05,
            Story::PlanMet => 1.02,
            Story::MovesOn => 0.93 - 0.12 * t,
            Story::Obstacle => 1.04,
            Story::StrongCloserWeakQuality => 0.8,
            Story::SolidAe => 1.1,
            Story::Declining => 1.06 - 0.22 * t,
            Story::SteadyAe => 1.02,
            Story::Promoted => 1.09,
        }
    }

    /// Quantity multiplier (of the ramp-adjusted target).
    fn quantity(self, t: f64, x: f64) -> f64 {
        match self {
            Story::FastGrower => 0.72 + 0.58 * t,
            Story::NewHire | Story::NewAe => 0.92 + 0.12 * x,
            Story::Steady => 1.07,
            Story::PlanMet => match t {
                t if t < 0.15 => 0.95,
                t if t < 0.45 => 0.66,
                t if t < 0.6 => 0.88,
                _ => 1.06,
            },
            Story::MovesOn => 0.8 - 0.25 * t,
            Story::Obstacle if t > 0.84 => 0.7,
            Story::Obstacle => 1.03,
            Story::StrongCloserWeakQuality => 1.32,
            Story::SolidAe => 1.12,
            Story::Declining => 1.06 - 0.42 * t,
            Story::SteadyAe => 0.99,
            Story::Promoted if t > 0.55 => 0.93,
            Story::Promoted => 1.1,
        }
    }

    /// Level of each competency at the start, and its change over the window.
    fn levels(self) -> ([f64; 6], [f64; 6]) {
        match self {
            Story::FastGrower => (
                [2.0, 2.0, 3.0, 3.0, 3.0, 2.0],
                [2.2, 2.0, 1.0, 1.0, 0.6, 1.8],
            ),
            Story::NewHire => (
                [1.0, 1.0, 2.0, 2.0, 3.0, 1.0],
                [1.0, 0.4, 1.2, 0.5, 0.0, 0.3],
            ),
            Story::Steady => ([3.0; 6], [0.0, 0.0, 0.6, 0.0, 0.0, 0.3]),
            Story::PlanMet => (
                [2.0, 2.0, 3.0, 3.0, 2.0, 2.0],
                [1.6, 1.5, 0.0, 0.4, 1.0, 0.5],
            ),
            Story::MovesOn => (
                [2.0, 2.0, 2.0, 3.0, 2.0, 2.0],
                [0.0, 0.3, 0.0, 0.0, -0.9, 0.0],
            ),
            Story::Obstacle => (
                [3.0, 3.0, 4.0, 3.0, 3.0, 3.0],
                [0.4, 0.0, 0.0, 0.3, -0.3, 0.0],
            ),
            Story::StrongCloserWeakQuality => (
                [2.0, 4.0, 3.0, 4.0, 4.0, 2.0],
                [0.9, 0.4, 0.0, 0.0, 0.0, 0.5],
            ),
            Story::SolidAe => (
                [4.0, 4.0, 4.0, 4.0, 4.0, 3.0],
                [0.3, 0.0, 0.4, 0.0, 0.0, 1.1],
            ),
            Story::Declining => (
                [3.0, 3.0, 3.0, 3.0, 4.0, 3.0],
                [0.0, -1.1, 0.0, 0.0, -2.1, -0.4],
            ),
            Story::SteadyAe => ([3.0; 6], [0.0, 0.3, 0.0, 0.6, 0.0, 0.0]),
            Story::Promoted => (
                [3.0, 3.0, 3.0, 4.0, 3.0, 2.0],
                [1.1, 0.6, 0.8, 0.0, 0.3, 1.5],
            ),
            Story::NewAe => (
                [2.0, 2.0, 2.0, 3.0, 3.0, 2.0],
                [0.5, 0.4, 1.1, 0.0, 0.0, 0.3],
            ),
        }
    }

    /// How much of the feedback is praise.
    fn praise(self, t: f64) -> f64 {
        match self {
            Story::FastGrower => 0.45 + 0.35 * t,
            Story::MovesOn | Story::Declining => 0.3,
            Story::PlanMet if t < 0.5 => 0.3,
            Story::SolidAe | Story::Promoted => 0.7,
            Story::StrongCloserWeakQuality => 0.4,
            _ => 0.55,
        }
    }
}

struct Cast {
    name: &'static str,
    team: usize,
    role: &'static str,
    story: Story,
}

const CAST: [Cast; 12] = [
    Cast {
        name: "Priya Nair",
        team: 0,
        role: SDR,
        story: Story::FastGrower,
    },
    Cast {
        name: "Tom Becker",
        team: 0,
        role: SDR,
        story: Story::NewHire,
    },
    Cast {
        name: "Lena Fischer",
        team: 0,
        role: SDR,
        story: Story::Steady,
    },
    Cast {
        name: "Marcus Hale",
        team: 0,
        role: SDR,
        story: Story::PlanMet,
    },
    Cast {
        name: "Jonas Weber",
        team: 0,
        role: SDR,
        story: Story::MovesOn,
    },
    Cast {
        name: "Aisha Khan",
        team: 0,
        role: SDR,
        story: Story::Obstacle,
    },
    Cast {
        name: "Sofia Alvarez",
        team: 1,
        role: AE,
        story: Story::StrongCloserWeakQuality,
    },
    Cast {
        name: "Ben Carter",
        team: 1,
        role: AE,
        story: Story::SolidAe,
    },
    Cast {
        name: "Chloe Martin",
        team: 1,
        role: AE,
        story: Story::Declining,
    },
    Cast {
        name: "Omar Haddad",
        team: 1,
        role: AE,
        story: Story::SteadyAe,
    },
    Cast {
        name: "Grace Liu",
        team: 0,
        role: SDR,
        story: Story::Promoted,
    },
    Cast {
        name: "Ethan Brooks",
        team: 1,
        role: AE,
        story: Story::NewAe,
    },
];

const TEAMS: [(&str, &str); 2] = [
    ("Northside SDRs", "Maya Okafor"),
    ("Harbor Account Executives", "Daniel Reyes"),
];

fn praise_note(c: usize, r: &mut Rng) -> &'static str {
    let notes: [[&str; 2]; 6] = [
        [
            "Great discovery on the Acme call: you asked about their renewal timeline before pitching and it changed the whole conversation.",
            "You quantified the cost of their manual process with the buyer; keep doing that on every first call.",
        ],
        [
            "When the CFO said 'too expensive' you asked what they compared us to; that turned the call around.",
            "You used the Globex case study at exactly the right moment to answer the security concern.",
        ],
        [
            "You answered the integration questions without needing an SE; the buyer noticed.",
            "Clear comparison with the competitor's pricing model; accurate and fair.",
        ],
        [
            "Your follow-up email was short, specific and had a clear next step; the buyer replied within the hour.",
            "You let the buyer talk for most of the call and summarised their priorities back perfectly.",
        ],
        [
            "Three rejections in a row on Tuesday and your fourth call was as good as your first. That is the job.",
            "You kept your activity up through a tough month without being asked. Noticed and appreciated.",
        ],
        [
            "Your account plan for the Northwind territory is the best on the team; sharing it at Friday's meeting.",
            "Good call prioritising the three renewals ahead of new logos this week.",
        ],
    ];
    notes[c][usize::from(r.chance(0.5))]
}

fn constructive_note(c: usize, r: &mut Rng) -> &'static str {
    let notes: [[&str; 2]; 6] = [
        [
            "You pitched the platform in the first five minutes of the Initech call; ask at least three open questions before any demo.",
            "You accepted 'we are just looking' without asking what triggered the search; dig one level deeper next time.",
        ],
        [
            "On the pricing objection you offered a discount before understanding the concern; clarify first, then answer.",
            "You moved on after the security objection without checking it was resolved; ask 'does that answer it?'.",
        ],
        [
            "Two answers about the reporting module were out of date; review the release notes from the last two sprints.",
            "You could not explain how we differ from the incumbent; let's rehearse the comparison together.",
        ],
        [
            "The recap email went to the wrong stakeholder and missed the agreed next step; use the recap template.",
            "You talked for 70% of the discovery call; aim for the buyer talking most of the time.",
        ],
        [
            "Activity dropped to a third after the lost deal last week; let's plan the day after a loss together.",
            "You skipped the call block twice this week; protect it in your calendar.",
        ],
        [
            "Your week was spent on the smallest accounts; rank the pipeline by fit and timing before Monday.",
            "No account plan yet for the two largest prospects; draft one for each before the next 1:1.",
        ],
    ];
    notes[c][usize::from(r.chance(0.5))]
}

/// What a session focused on a competency covered, by competency.
const SESSION_NOTES: [&str; 6] = [
    "Listened to two recorded calls together and marked where discovery stopped too early.",
    "Role-played the three most common objections; agreed on a short answer for each.",
    "Walked through the new product release and rehearsed the demo flow.",
    "Reviewed two follow-up emails and a call recording for clarity and listening.",
    "Talked through a tough week; agreed to keep the morning call block no matter what.",
    "Built next month's territory plan together and ranked the pipeline by fit and timing.",
];

const REP_ITEMS: [&str; 6] = [
    "Listen back to two of your calls and note every question you asked",
    "Write a one-page account plan for your top prospect",
    "Rehearse the pricing objection with a peer",
    "Update every open opportunity's next step in the CRM",
    "Shadow a senior colleague's discovery call",
    "Read the release notes and summarise three changes",
];

const LEADER_ITEMS: [&str; 4] = [
    "Get the rep access to the call-recording library",
    "Introduce the rep to the solutions engineer for the Acme deal",
    "Book a joint call with the rep's largest prospect",
    "Ask marketing for the new case study deck",
];

const TRAININGS: [(&str, usize); 6] = [
    ("SPIN discovery workshop", DISCOVERY),
    ("Objection handling bootcamp", OBJECTIONS),
    ("Product certification, level 2", PRODUCT),
    ("Writing emails that get answers", COMMUNICATION),
    ("Mental resilience for sellers", RESILIENCE),
    ("Territory and account planning", STRATEGY),
];

const SUPPORT: [(&str, &str, &str); 5] = [
    (
        "leads",
        "The inbound lead queue for my territory has been empty for a week.",
        "Rebalanced the inbound routing rules so the territory gets its share again.",
    ),
    (
        "tools",
        "The dialer drops calls after two minutes since the last update.",
        "IT rolled back the dialer update and opened a ticket with the vendor.",
    ),
    (
        "training",
        "I need a refresher on the new pricing tiers before my demo next week.",
        "Walked through the pricing tiers together and shared the pricing FAQ.",
    ),
    (
        "process",
        "Deals stall in legal review for weeks; I do not know whom to chase.",
        "Agreed a named contact in legal and a five-day review target.",
    ),
    (
        "other",
        "My laptop is too slow to run the demo environment.",
        "Ordered a new laptop; loaner handed over the same day.",
    ),
];

// ---------------------------------------------------------------------------
// The script

/// One request to make on a given day; follow-ups are scheduled as the
/// answers come in (they need the ids the service returned).
#[derive(Debug, Clone)]
enum Step {
    Join(usize),
    AcknowledgeExpectations(usize, usize),
    Session {
        rep: usize,
        minutes: u32,
        focus: Vec<usize>,
        notes: String,
        private: bool,
        items: Vec<PlannedItem>,
    },
    CompleteItem {
        rep: usize,
        item: Uuid,
        by_leader: bool,
    },
    Feedback {
        rep: usize,
        competency: usize,
        praise: bool,
        note: String,
        private: bool,
        acknowledge_after: Option<u64>,
    },
    AcknowledgeFeedback(usize, Uuid),
    Assess {
        rep: usize,
        competency: usize,
        level: i64,
        evidence: String,
        correct_to: Option<i64>,
    },
    Correct {
        rep: usize,
        fact: Uuid,
        level: i64,
    },
    Training(usize, usize),
    Support {
        rep: usize,
        which: usize,
        acknowledge_after: Option<u64>,
        resolve_after: Option<u64>,
    },
    AcknowledgeSupport(usize, Uuid),
    ResolveSupport(usize, Uuid, usize),
    StartPlan {
        rep: usize,
        review_after: u64,
        outcome: &'static str,
    },
    Checkpoint(usize, Uuid, String),
    ClosePlan(usize, Uuid, &'static str),
    Depart(usize, String),
    ChangeRole(usize, &'static str),
    MoveTeam(usize, usize),
    ImportWeek(Period),
    ImportMonth(Period),
}

#[derive(Debug, Clone)]
struct PlannedItem {
    description: String,
    leader_owned: bool,
    due_after: u64,
    /// Days after the due date it is completed (negative: early); `None`: never.
    done: Option<i64>,
}

struct Rep {
    id: Uuid,
    start: NaiveDate,
    team: usize,
    role: &'static str,
    departed: Option<NaiveDate>,
    /// The planned departure: nothing new is recorded from that day on.
    leaves: Option<NaiveDate>,
    token: String,
}

struct Seeder<'a> {
    router: Router,
    app: &'a HttpState,
    seed: u64,
    today: NaiveDate,
    window_start: NaiveDate,
    requests: usize,
    admin: String,
    crm: String,
    leader_tokens: Vec<String>,
    leader_ids: Vec<Uuid>,
    team_ids: Vec<Uuid>,
    competency_ids: Vec<Uuid>,
    standard_ids: Vec<Uuid>,
    reps: Vec<Rep>,
    agenda: BTreeMap<(NaiveDate, u64), Step>,
    next_seq: u64,
    rng: Rng,
    /// The week whose meetings are re-imported with a corrected value.
    reimport: Option<(usize, Period)>,
    last_meetings: BTreeMap<(usize, Period), i64>,
}

fn monday(date: NaiveDate) -> NaiveDate {
    date - Days::new(u64::from(date.weekday().num_days_from_monday()))
}

fn plus(date: NaiveDate, days: u64) -> NaiveDate {
    date + Days::new(days)
}

fn minus(date: NaiveDate, days: u64) -> NaiveDate {
    date - Days::new(days)
}

/// A deterministic id for a demo person (leaders are not created by a command).
fn person_id(seed: u64, label: &str) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x7a1e_55d0_2b3c_4e8f_9a61_0c2d_3e4f_5a6b);
    Uuid::new_v5(&NAMESPACE, format!("demo-{seed}-{label}").as_bytes())
}

/// Fills `commands`' store with the demo organisation as of `today`, through the
/// command service. Deterministic for `seed` and `today`.
pub async fn seed(
    commands: &CommandState,
    seed: u64,
    today: NaiveDate,
) -> Result<DemoOrg, DemoError> {
    let app = commands.http();
    let now = app.clock().now().timestamp();
    let mint = |sub: String, role: Role, teams: Vec<Uuid>, grants: Vec<String>| {
        app.token_key().mint(&Claims {
            sub,
            role,
            teams,
            grants,
            exp: now + TOKEN_DAYS * 24 * 3600,
            iat: Some(now),
        })
    };
    let window_start = monday(minus(today, WEEKS * 7));
    let mut s = Seeder {
        router: trellis_http::app(app.clone(), [trellis_commands::api(commands.clone())]),
        app,
        seed,
        today,
        window_start,
        requests: 0,
        admin: mint("admin:demo".into(), Role::Admin, vec![], vec![]),
        crm: mint(
            "service:crm-sync".into(),
            Role::Service,
            vec![],
            vec!["measurements:write".into()],
        ),
        leader_tokens: vec![],
        leader_ids: vec![],
        team_ids: vec![],
        competency_ids: vec![],
        standard_ids: vec![],
        reps: vec![],
        agenda: BTreeMap::new(),
        next_seq: 0,
        rng: Rng::new(seed),
        reimport: None,
        last_meetings: BTreeMap::new(),
    };
    s.framework().await?;
    for (i, leader_id) in s.leader_ids.clone().into_iter().enumerate() {
        let token = mint(
            leader_id.to_string(),
            Role::Leader,
            vec![s.team_ids[i]],
            vec![],
        );
        s.leader_tokens.push(token);
    }
    s.plan();
    s.run().await?;

    let reps = CAST
        .iter()
        .zip(&s.reps)
        .map(|(cast, rep)| DemoRep {
            id: rep.id,
            name: cast.name.to_owned(),
            team_id: s.team_ids[rep.team],
            role: rep.role.to_owned(),
            start_date: rep.start,
            story: cast.story.describe().to_owned(),
            token: mint(rep.id.to_string(), Role::Rep, vec![], vec![]),
        })
        .collect();
    Ok(DemoOrg {
        seed,
        today,
        teams: TEAMS
            .iter()
            .enumerate()
            .map(|(i, (name, _))| DemoTeam {
                id: s.team_ids[i],
                name: (*name).to_owned(),
                leader_id: s.leader_ids[i],
            })
            .collect(),
        leaders: TEAMS
            .iter()
            .enumerate()
            .map(|(i, (_, name))| DemoLeader {
                id: s.leader_ids[i],
                name: (*name).to_owned(),
                team_ids: vec![s.team_ids[i]],
                token: s.leader_tokens[i].clone(),
            })
            .collect(),
        reps,
        competencies: COMPETENCIES
            .iter()
            .zip(&s.competency_ids)
            .map(|((name, _, _), id)| (*id, (*name).to_owned()))
            .collect(),
        standards: STANDARD_NAMES
            .iter()
            .zip(&s.standard_ids)
            .map(|(name, id)| (*id, (*name).to_owned()))
            .collect(),
        admin_token: s.admin.clone(),
        auditor_token: mint("auditor:demo".into(), Role::Auditor, vec![], vec![]),
        requests: s.requests,
    })
}

const STANDARD_NAMES: [&str; 6] = [
    "Call quality score",
    "CRM records incomplete",
    "Meetings booked",
    "Calls made",
    "Pipeline created",
    "Revenue closed",
];

impl Seeder<'_> {
    fn date_str(d: NaiveDate) -> String {
        d.format("%Y-%m-%d").to_string()
    }

    /// Sends one request; returns the JSON answer of a 2xx.
    async fn send(
        &mut self,
        step: &str,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> Result<Value, DemoError> {
        self.requests += 1;
        let key = format!("demo-{}-{}", self.seed, self.requests);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", key)
            // Over a thousand requests: logged at DEBUG, not one INFO line each.
            .extension(trellis_http::BulkRequest)
            .body(Body::from(body.to_string()))
            .expect("a valid request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        if !status.is_success() {
            return Err(DemoError::Refused {
                step: step.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn id_of(step: &str, answer: &Value) -> Result<Uuid, DemoError> {
        answer["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| DemoError::Unexpected {
                step: step.to_owned(),
                what: "id".into(),
            })
    }

    /// The ids of the action items a recorded session answered with, one per
    /// item sent, in order: without them the items could never be completed,
    /// and the demo would quietly tell another story than its script.
    fn action_item_ids(step: &str, answer: &Value, sent: usize) -> Result<Vec<Uuid>, DemoError> {
        let unexpected = |what: String| DemoError::Unexpected {
            step: step.to_owned(),
            what,
        };
        let ids = answer["action_item_ids"].as_array().ok_or_else(|| {
            unexpected(format!(
                "action_item_ids (an array with the id of each of the {sent} action item(s) \
                 sent); it answered {answer}"
            ))
        })?;
        if ids.len() != sent {
            return Err(unexpected(format!(
                "one action item id per action item sent ({sent}); it answered {} in {answer}",
                ids.len()
            )));
        }
        ids.iter()
            .map(|v| {
                v.as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| unexpected(format!("a UUID in action_item_ids, not {v}")))
            })
            .collect()
    }

    async fn create(
        &mut self,
        step: &str,
        path: &str,
        token: String,
        body: Value,
    ) -> Result<Uuid, DemoError> {
        let answer = self.send(step, Method::POST, path, &token, body).await?;
        Self::id_of(step, &answer)
    }

    async fn framework(&mut self) -> Result<(), DemoError> {
        let admin = self.admin.clone();
        for (i, (team, leader)) in TEAMS.iter().enumerate() {
            let id = self
                .create(
                    "form team",
                    "/v1/teams",
                    admin.clone(),
                    json!({ "name": team }),
                )
                .await?;
            let leader_id = person_id(self.seed, &format!("leader-{i}"));
            self.send(
                "assign leader",
                Method::POST,
                &format!("/v1/teams/{id}/leaders"),
                &admin,
                json!({ "leader_id": leader_id, "leader_name": leader }),
            )
            .await?;
            self.team_ids.push(id);
            self.leader_ids.push(leader_id);
        }
        for (name, description, rubric) in COMPETENCIES {
            let id = self
                .create(
                    "define competency",
                    "/v1/competencies",
                    admin.clone(),
                    json!({ "name": name, "description": description, "rubric": rubric }),
                )
                .await?;
            self.competency_ids.push(id);
        }
        let from = Self::date_str(minus(self.window_start, 26 * 7));
        let weekly_ramp: Vec<Value> = [25, 35, 45, 55, 65, 75, 85, 95]
            .iter()
            .enumerate()
            .map(|(i, p)| json!({ "period_index": i + 1, "percent_of_target": p }))
            .collect();
        let standards = [
            json!({ "name": STANDARD_NAMES[CALL_QUALITY], "metric": "call_quality_score", "kind": "quality",
                    "direction": "at_least", "unit": "points", "period": "week", "target": 80.0,
                    "roles": [SDR, AE], "effective_from": from }),
            json!({ "name": STANDARD_NAMES[CRM_INCOMPLETE], "metric": "crm_incomplete_pct", "kind": "quality",
                    "direction": "at_most", "unit": "%", "period": "week", "target": 10.0,
                    "roles": [SDR, AE], "effective_from": from }),
            json!({ "name": STANDARD_NAMES[MEETINGS], "metric": "meetings_booked", "kind": "quantity",
                    "direction": "at_least", "unit": "meetings", "period": "week", "target": 8.0,
                    "roles": [SDR], "effective_from": from, "ramp": weekly_ramp }),
            json!({ "name": STANDARD_NAMES[CALLS], "metric": "calls_made", "kind": "quantity",
                    "direction": "at_least", "unit": "calls", "period": "week", "target": 60.0,
                    "roles": [SDR], "effective_from": from, "ramp": weekly_ramp }),
            json!({ "name": STANDARD_NAMES[PIPELINE], "metric": "pipeline_created", "kind": "quantity",
                    "direction": "at_least", "unit": "EUR", "period": "month", "target": 120000.0,
                    "roles": [AE], "effective_from": from,
                    "ramp": [{ "period_index": 1, "percent_of_target": 30 },
                             { "period_index": 2, "percent_of_target": 60 },
                             { "period_index": 3, "percent_of_target": 85 }] }),
            json!({ "name": STANDARD_NAMES[REVENUE], "metric": "revenue_closed", "kind": "quantity",
                    "direction": "at_least", "unit": "EUR", "period": "month", "target": 50000.0,
                    "roles": [AE], "effective_from": from }),
        ];
        for body in standards {
            let id = self
                .create("set standard", "/v1/standards", admin.clone(), body)
                .await?;
            self.standard_ids.push(id);
        }
        // Half-way, the call-quality bar goes up.
        let revised = self.revision_date();
        let id = self.standard_ids[CALL_QUALITY];
        self.send(
            "revise standard",
            Method::POST,
            &format!("/v1/standards/{id}/revisions"),
            &admin,
            json!({ "target": 85.0, "effective_from": Self::date_str(revised) }),
        )
        .await?;
        Ok(())
    }

    fn revision_date(&self) -> NaiveDate {
        monday(self.at(0.45))
    }

    /// The date at fraction `t` of the window.
    fn at(&self, t: f64) -> NaiveDate {
        let days = (self.today - self.window_start).num_days() as f64;
        plus(self.window_start, (days * t.clamp(0.0, 1.0)) as u64)
    }

    /// Where `date` falls in the window, 0 to 1.
    fn t(&self, date: NaiveDate) -> f64 {
        let days = (self.today - self.window_start).num_days().max(1) as f64;
        ((date - self.window_start).num_days() as f64 / days).clamp(0.0, 1.0)
    }

    fn schedule(&mut self, date: NaiveDate, step: Step) {
        if date > self.today {
            return;
        }
        self.next_seq += 1;
        self.agenda.insert((date, self.next_seq), step);
    }

    /// Lays out every rep's story as dated steps.
    fn plan(&mut self) {
        let today = self.today;
        let ws = self.window_start;
        for (i, cast) in CAST.iter().enumerate() {
            let start = match cast.story {
                Story::NewHire => monday(minus(today, 7 * 7)),
                Story::NewAe => {
                    let d = minus(today, 100);
                    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d)
                }
                _ => minus(ws, 7 * (10 + i as u64 * 2)),
            };
            self.reps.push(Rep {
                id: Uuid::nil(),
                start,
                team: cast.team,
                role: cast.role,
                departed: None,
                leaves: None,
                token: String::new(),
            });
            self.schedule(minus(ws, 1), Step::Join(i));
        }
        for i in 0..CAST.len() {
            self.plan_rep(i);
        }
        // Measurements: each week's and month's figures are imported the day after it ends.
        let mut week = Period::containing(PeriodKind::Week, ws);
        while week.end() < today {
            self.schedule(plus(week.end(), 1), Step::ImportWeek(week));
            week = week.next();
        }
        let mut month = Period::containing(PeriodKind::Month, ws);
        while month.end() < today {
            self.schedule(plus(month.end(), 2), Step::ImportMonth(month));
            month = month.next();
        }
    }

    fn plan_rep(&mut self, i: usize) {
        let story = CAST[i].story;
        let mut r = self.rng.fork(i as u64 + 1);
        let today = self.today;
        let from = plus(self.window_start.max(self.reps[i].start), 1);
        let mut until = today;

        // Expectations acknowledged in the first days.
        let standards: Vec<usize> = match CAST[i].role {
            SDR => vec![CALL_QUALITY, CRM_INCOMPLETE, MEETINGS, CALLS],
            _ => vec![CALL_QUALITY, CRM_INCOMPLETE, PIPELINE, REVENUE],
        };
        for s in standards {
            self.schedule(plus(from, 2), Step::AcknowledgeExpectations(i, s));
        }

        // Improvement plans, departure, promotion.
        match story {
            Story::PlanMet => {
                self.schedule(
                    self.at(0.35),
                    Step::StartPlan {
                        rep: i,
                        review_after: 56,
                        outcome: "met",
                    },
                );
            }
            Story::MovesOn => {
                let start = self.at(0.5);
                self.schedule(
                    start,
                    Step::StartPlan {
                        rep: i,
                        review_after: 42,
                        outcome: "not_met",
                    },
                );
                let leaves = plus(start, 49);
                until = minus(leaves, 1);
                self.reps[i].leaves = Some(leaves);
                self.schedule(
                    leaves,
                    Step::Depart(
                        i,
                        "Left for an operations role outside sales after the plan was not met."
                            .into(),
                    ),
                );
            }
            Story::Promoted => {
                let on = monday(self.at(0.55));
                self.schedule(on, Step::ChangeRole(i, AE));
                self.schedule(on, Step::MoveTeam(i, 1));
            }
            _ => {}
        }

        // Coaching sessions: every two weeks on the SDR team, every three on
        // the AE team; the declining rep has not been coached for weeks.
        let cadence = if CAST[i].team == 0 { 14 } else { 21 };
        let mut day = plus(from, r.int(2, 9) as u64);
        let coaching_until = if story == Story::Declining {
            minus(today, 45)
        } else {
            until
        };
        let (base, slope) = story.levels();
        while day <= coaching_until {
            let t = self.t(day);
            let mut by_level: Vec<(f64, usize)> = (0..6)
                .map(|c| (base[c] + slope[c] * t + r.range(-0.3, 0.3), c))
                .collect();
            by_level.sort_by(|a, b| a.0.total_cmp(&b.0));
            let focus: Vec<usize> = by_level
                .iter()
                .take(if r.chance(0.5) { 1 } else { 2 })
                .map(|(_, c)| *c)
                .collect();
            let mut items = vec![];
            for _ in 0..r.int(1, 2) {
                let leader_owned = r.chance(0.25);
                let due_after = *r.pick(&[7u64, 10, 14]);
                let done_roll = r.unit();
                let late_prone =
                    matches!(story, Story::Obstacle | Story::MovesOn | Story::Declining);
                // Most follow-ups are kept on time; the reps who struggle
                // leave some open long past their due date.
                let done = if done_roll < if late_prone { 0.55 } else { 0.8 } {
                    Some(-r.int(0, 3))
                } else if done_roll < if late_prone { 0.8 } else { 1.0 } {
                    Some(r.int(1, 6))
                } else {
                    None
                };
                let description = if leader_owned {
                    (*r.pick(&LEADER_ITEMS)).to_owned()
                } else {
                    (*r.pick(&REP_ITEMS)).to_owned()
                };
                items.push(PlannedItem {
                    description,
                    leader_owned,
                    due_after,
                    done,
                });
            }
            let notes = SESSION_NOTES[focus[0]].to_owned();
            self.schedule(
                day,
                Step::Session {
                    rep: i,
                    minutes: *r.pick(&[30u32, 45, 45, 60]),
                    focus,
                    notes,
                    private: r.chance(0.15),
                    items,
                },
            );
            day = plus(day, (cadence + r.int(-3, 3)) as u64);
        }

        // Feedback about every ten days.
        let mut day = plus(from, r.int(3, 8) as u64);
        while day <= until {
            let t = self.t(day);
            let praise = r.chance(story.praise(t));
            let competency = r.int(0, 5) as usize;
            let note = if praise {
                praise_note(competency, &mut r)
            } else {
                constructive_note(competency, &mut r)
            };
            let private = r.chance(0.12);
            let acknowledge_after = (!private && r.chance(0.6)).then(|| r.int(0, 3) as u64);
            self.schedule(
                day,
                Step::Feedback {
                    rep: i,
                    competency,
                    praise,
                    note: note.to_owned(),
                    private,
                    acknowledge_after,
                },
            );
            day = plus(day, r.int(7, 13) as u64);
        }

        // Skill assessments: a baseline of every competency, then three every five weeks.
        let mut day = plus(from, 5);
        let mut round = 0;
        while day <= until {
            let t = self.t(day);
            let x = self.tenure_share(i, day);
            let which: Vec<usize> = if round == 0 {
                (0..6).collect()
            } else {
                (0..3).map(|k| (round * 3 + k) % 6).collect()
            };
            for c in which {
                let progress = if matches!(story, Story::NewHire | Story::NewAe) {
                    x
                } else {
                    t
                };
                let level = (base[c] + slope[c] * progress + r.range(-0.25, 0.25))
                    .round()
                    .clamp(1.0, 5.0) as i64;
                let evidence = format!(
                    "Observed on recorded calls and in the pipeline review: {}.",
                    COMPETENCIES[c].2[usize::try_from(level - 1).unwrap_or(0)].to_lowercase()
                );
                // One level typed in wrongly, corrected two days later.
                let correct_to =
                    (story == Story::FastGrower && round == 2 && c == DISCOVERY).then_some(level);
                let level = if correct_to.is_some() { 5 } else { level };
                self.schedule(
                    day,
                    Step::Assess {
                        rep: i,
                        competency: c,
                        level,
                        evidence,
                        correct_to,
                    },
                );
            }
            round += 1;
            day = plus(day, 35);
        }

        // Training.
        for k in 0..r.int(1, 3) {
            let day = plus(from, r.int(10, 200) as u64 + k as u64 * 7);
            if day <= until {
                let which = r.int(0, 5) as usize;
                self.schedule(day, Step::Training(i, which));
            }
        }

        // Support requests, resolved at various speeds.
        for _ in 0..r.int(1, 2) {
            let day = plus(from, r.int(10, 220) as u64);
            if day <= minus(until, 20) {
                self.schedule(
                    day,
                    Step::Support {
                        rep: i,
                        which: r.int(0, 4) as usize,
                        acknowledge_after: Some(r.int(0, 2) as u64),
                        resolve_after: Some(*r.pick(&[1u64, 2, 3, 5, 8, 13, 21])),
                    },
                );
            }
        }
        match story {
            Story::Obstacle => self.schedule(
                minus(today, 12),
                Step::Support {
                    rep: i,
                    which: 1,
                    acknowledge_after: Some(1),
                    resolve_after: None,
                },
            ),
            Story::Declining => self.schedule(
                minus(today, 5),
                Step::Support {
                    rep: i,
                    which: 0,
                    acknowledge_after: None,
                    resolve_after: None,
                },
            ),
            _ => {}
        }
    }

    /// Share of the ramp (eight weeks or three months) behind the rep on `date`.
    fn tenure_share(&self, i: usize, date: NaiveDate) -> f64 {
        let days = (date - self.reps[i].start).num_days().max(0) as f64;
        (days / 90.0).clamp(0.0, 1.0)
    }

    fn leader_of(&self, i: usize) -> (String, Uuid) {
        let team = self.reps[i].team;
        (self.leader_tokens[team].clone(), self.leader_ids[team])
    }

    async fn run(&mut self) -> Result<(), DemoError> {
        while let Some(((date, _), step)) = self.agenda.pop_first() {
            self.execute(date, step).await?;
        }
        Ok(())
    }

    fn rep_path(&self, i: usize, tail: &str) -> String {
        format!("/v1/reps/{}/{tail}", self.reps[i].id)
    }

    /// POSTs `{"on": day}` to one of rep `i`'s routes (an acknowledgement,
    /// a completion) as `token`.
    async fn on_day(
        &mut self,
        step: &str,
        i: usize,
        tail: &str,
        token: &str,
        day: &str,
    ) -> Result<(), DemoError> {
        let path = self.rep_path(i, tail);
        self.send(step, Method::POST, &path, token, json!({ "on": day }))
            .await?;
        Ok(())
    }

    async fn execute(&mut self, on: NaiveDate, step: Step) -> Result<(), DemoError> {
        let d = Self::date_str(on);
        match step {
            Step::Join(i) => {
                let body = json!({
                    "name": CAST[i].name, "role": CAST[i].role,
                    "team_id": self.team_ids[CAST[i].team],
                    "start_date": Self::date_str(self.reps[i].start),
                });
                let admin = self.admin.clone();
                let id = self.create("join rep", "/v1/reps", admin, body).await?;
                self.reps[i].id = id;
                let now = self.app.clock().now().timestamp();
                self.reps[i].token = self.app.token_key().mint(&Claims {
                    sub: id.to_string(),
                    role: Role::Rep,
                    teams: vec![],
                    grants: vec![],
                    exp: now + 3600,
                    iat: Some(now),
                });
            }
            Step::AcknowledgeExpectations(i, s) => {
                let path = self.rep_path(i, "expectations-acknowledgements");
                let token = self.reps[i].token.clone();
                let body = json!({ "standard_id": self.standard_ids[s], "on": d });
                self.send(
                    "acknowledge expectations",
                    Method::POST,
                    &path,
                    &token,
                    body,
                )
                .await?;
            }
            Step::Session {
                rep,
                minutes,
                focus,
                notes,
                private,
                items,
            } => {
                let (token, _) = self.leader_of(rep);
                let body = json!({
                    "held_on": d, "duration_minutes": minutes,
                    "focus": focus.iter().map(|c| self.competency_ids[*c]).collect::<Vec<_>>(),
                    "notes": notes,
                    "visibility": if private { "private" } else { "shared" },
                    "action_items": items.iter().map(|item| json!({
                        "description": item.description,
                        "owner": if item.leader_owned { "leader" } else { "rep" },
                        "due_on": Self::date_str(plus(on, item.due_after)),
                    })).collect::<Vec<_>>(),
                });
                let path = self.rep_path(rep, "coaching-sessions");
                let answer = self
                    .send("coaching session", Method::POST, &path, &token, body)
                    .await?;
                let ids = Self::action_item_ids("coaching session", &answer, items.len())?;
                for (item, id) in items.iter().zip(ids) {
                    if let Some(offset) = item.done {
                        let due = plus(on, item.due_after);
                        let done = if offset < 0 {
                            minus(due, offset.unsigned_abs()).max(on)
                        } else {
                            plus(due, offset.unsigned_abs())
                        };
                        self.schedule(
                            done,
                            Step::CompleteItem {
                                rep,
                                item: id,
                                by_leader: item.leader_owned,
                            },
                        );
                    }
                }
            }
            Step::CompleteItem {
                rep,
                item,
                by_leader,
            } => {
                let token = if by_leader {
                    self.leader_of(rep).0
                } else {
                    self.reps[rep].token.clone()
                };
                self.on_day(
                    "complete action item",
                    rep,
                    &format!("action-items/{item}/completion"),
                    &token,
                    &d,
                )
                .await?;
            }
            Step::Feedback {
                rep,
                competency,
                praise,
                note,
                private,
                acknowledge_after,
            } => {
                let (token, _) = self.leader_of(rep);
                let body = json!({
                    "competency_id": self.competency_ids[competency],
                    "kind": if praise { "praise" } else { "constructive" },
                    "note": note,
                    "visibility": if private { "private" } else { "shared" },
                    "given_on": d,
                });
                let path = self.rep_path(rep, "feedback");
                let id = self.create("feedback", &path, token, body).await?;
                if let Some(after) = acknowledge_after
                    && self.reps[rep].leaves.is_none_or(|d| plus(on, after) < d)
                {
                    self.schedule(plus(on, after), Step::AcknowledgeFeedback(rep, id));
                }
            }
            Step::AcknowledgeFeedback(rep, id) => {
                let token = self.reps[rep].token.clone();
                self.on_day(
                    "acknowledge feedback",
                    rep,
                    &format!("feedback/{id}/acknowledgement"),
                    &token,
                    &d,
                )
                .await?;
            }
            Step::Assess {
                rep,
                competency,
                level,
                evidence,
                correct_to,
            } => {
                let (token, _) = self.leader_of(rep);
                let body = json!({
                    "competency_id": self.competency_ids[competency],
                    "level": level, "evidence": evidence, "assessed_on": d,
                });
                let path = self.rep_path(rep, "skill-assessments");
                let id = self.create("skill assessment", &path, token, body).await?;
                if let Some(level) = correct_to {
                    self.schedule(
                        plus(on, 2),
                        Step::Correct {
                            rep,
                            fact: id,
                            level,
                        },
                    );
                }
            }
            Step::Correct { rep, fact, level } => {
                let (token, _) = self.leader_of(rep);
                let body = json!({
                    "fact_id": fact,
                    "reason": "Entered a 5 by mistake: the evidence describes a level below that.",
                    "correction": { "kind": "skill_level", "level": level,
                                    "evidence": "Re-rated against the rubric after reviewing the same calls." },
                });
                let path = self.rep_path(rep, "corrections");
                self.send("correction", Method::POST, &path, &token, body)
                    .await?;
            }
            Step::Training(rep, which) => {
                let (token, _) = self.leader_of(rep);
                let (title, competency) = TRAININGS[which];
                let body = json!({
                    "title": title, "competency_id": self.competency_ids[competency], "completed_on": d,
                });
                let path = self.rep_path(rep, "trainings");
                self.send("training", Method::POST, &path, &token, body)
                    .await?;
            }
            Step::Support {
                rep,
                which,
                acknowledge_after,
                resolve_after,
            } => {
                let token = self.reps[rep].token.clone();
                let (category, description, _) = SUPPORT[which];
                let body =
                    json!({ "category": category, "description": description, "raised_on": d });
                let path = self.rep_path(rep, "support-requests");
                let id = self.create("support request", &path, token, body).await?;
                if let Some(after) = acknowledge_after {
                    self.schedule(plus(on, after), Step::AcknowledgeSupport(rep, id));
                }
                if let Some(after) = resolve_after {
                    let after = after.max(acknowledge_after.unwrap_or(0));
                    self.schedule(plus(on, after), Step::ResolveSupport(rep, id, which));
                }
            }
            Step::AcknowledgeSupport(rep, id) => {
                let (token, _) = self.leader_of(rep);
                self.on_day(
                    "acknowledge support",
                    rep,
                    &format!("support-requests/{id}/acknowledgement"),
                    &token,
                    &d,
                )
                .await?;
            }
            Step::ResolveSupport(rep, id, which) => {
                let (token, _) = self.leader_of(rep);
                let path = self.rep_path(rep, &format!("support-requests/{id}/resolution"));
                let body = json!({ "resolution": SUPPORT[which].2, "on": d });
                self.send("resolve support", Method::POST, &path, &token, body)
                    .await?;
            }
            Step::StartPlan {
                rep,
                review_after,
                outcome,
            } => {
                let (token, _) = self.leader_of(rep);
                let review = plus(on, review_after);
                let body = json!({
                    "targets": [
                        { "description": "Book at least 8 meetings a week for four weeks in a row",
                          "standard_id": self.standard_ids[MEETINGS] },
                        { "description": "Make at least 60 calls a week",
                          "standard_id": self.standard_ids[CALLS] },
                        { "description": "Prepare each first call with a written account brief" },
                    ],
                    "started_on": d, "review_on": Self::date_str(review),
                });
                let path = self.rep_path(rep, "improvement-plans");
                let id = self.create("improvement plan", &path, token, body).await?;
                let notes = match outcome {
                    "met" => [
                        "Activity back above 50 calls a week; meetings still short of target.",
                        "Four weeks in a row at or above the meetings target.",
                    ],
                    _ => [
                        "Calls up slightly; meetings still at half the target.",
                        "No improvement in meetings booked; discussed the options openly.",
                    ],
                };
                self.schedule(
                    plus(on, review_after / 3),
                    Step::Checkpoint(rep, id, notes[0].into()),
                );
                self.schedule(
                    plus(on, 2 * review_after / 3),
                    Step::Checkpoint(rep, id, notes[1].into()),
                );
                self.schedule(review, Step::ClosePlan(rep, id, outcome));
            }
            Step::Checkpoint(rep, plan, note) => {
                let (token, _) = self.leader_of(rep);
                let path = self.rep_path(rep, &format!("improvement-plans/{plan}/checkpoints"));
                self.send(
                    "plan checkpoint",
                    Method::POST,
                    &path,
                    &token,
                    json!({ "note": note, "on": d }),
                )
                .await?;
            }
            Step::ClosePlan(rep, plan, outcome) => {
                let (token, _) = self.leader_of(rep);
                let note = if outcome == "met" {
                    "Every target met for four weeks; the plan is closed and the rep is back on track."
                } else {
                    "Targets not met by the review date; agreed that the rep moves on."
                };
                let path = self.rep_path(rep, &format!("improvement-plans/{plan}/closure"));
                let body = json!({ "outcome": outcome, "note": note, "on": d });
                self.send("close plan", Method::POST, &path, &token, body)
                    .await?;
            }
            Step::Depart(rep, reason) => {
                // Who is on which team, in which role, is an admin's to record.
                let token = self.admin.clone();
                let path = self.rep_path(rep, "departure");
                self.send(
                    "departure",
                    Method::POST,
                    &path,
                    &token,
                    json!({ "on": d, "reason": reason }),
                )
                .await?;
                self.reps[rep].departed = Some(on);
            }
            Step::ChangeRole(rep, role) => {
                // Who is on which team, in which role, is an admin's to record.
                let token = self.admin.clone();
                let path = self.rep_path(rep, "role-changes");
                self.send(
                    "role change",
                    Method::POST,
                    &path,
                    &token,
                    json!({ "role": role, "on": d }),
                )
                .await?;
                self.reps[rep].role = role;
            }
            Step::MoveTeam(rep, team) => {
                // Who is on which team, in which role, is an admin's to record.
                let token = self.admin.clone();
                let path = self.rep_path(rep, "team-moves");
                let body = json!({ "team_id": self.team_ids[team], "on": d });
                self.send("team move", Method::POST, &path, &token, body)
                    .await?;
                self.reps[rep].team = team;
            }
            Step::ImportWeek(week) => self.import_week(week).await?,
            Step::ImportMonth(month) => self.import_month(month).await?,
        }
        Ok(())
    }

    fn measured(&self, i: usize, period: Period) -> bool {
        let rep = &self.reps[i];
        rep.start <= period.end() && rep.departed.is_none_or(|d| period.start() <= d)
    }

    fn noise(&mut self) -> f64 {
        self.rng.range(0.93, 1.07)
    }

    /// The ramp percentage for the rep's `index`-th period.
    fn ramp(steps: &[u32], index: u32) -> f64 {
        steps
            .get(usize::try_from(index).unwrap_or(usize::MAX).wrapping_sub(1))
            .map_or(1.0, |p| f64::from(*p) / 100.0)
    }

    async fn import_week(&mut self, week: Period) -> Result<(), DemoError> {
        let mut rows = vec![];
        let quality_target = if week.start() >= self.revision_date() {
            85.0
        } else {
            80.0
        };
        for (i, cast) in CAST.iter().enumerate() {
            if !self.measured(i, week) {
                continue;
            }
            let story = cast.story;
            let (t, x) = (self.t(week.end()), self.tenure_share(i, week.end()));
            let id = self.reps[i].id;
            let q = story.quality(t, x);
            let quality = (quality_target * q * self.noise()).clamp(20.0, 100.0);
            let crm = (10.0 / q * self.noise()).clamp(0.5, 60.0);
            rows.push(
                json!({ "rep_id": id, "metric": "call_quality_score", "period": week.to_string(),
                              "value": (quality * 10.0).round() / 10.0 }),
            );
            rows.push(
                json!({ "rep_id": id, "metric": "crm_incomplete_pct", "period": week.to_string(),
                              "value": (crm * 10.0).round() / 10.0 }),
            );
            if self.reps[i].role == SDR {
                let index = week.ordinal_since(self.reps[i].start).unwrap_or(99);
                let ramp = Self::ramp(&[25, 35, 45, 55, 65, 75, 85, 95], index);
                let n = story.quantity(t, x) * ramp;
                let meetings = (8.0 * n * self.noise()).round().max(0.0) as i64;
                let calls = (60.0 * n * self.noise()).round().max(0.0) as i64;
                rows.push(
                    json!({ "rep_id": id, "metric": "meetings_booked", "period": week.to_string(),
                                  "value": meetings }),
                );
                rows.push(
                    json!({ "rep_id": id, "metric": "calls_made", "period": week.to_string(),
                                  "value": calls }),
                );
                self.last_meetings.insert((i, week), meetings);
            }
        }
        // The CRM re-imports one earlier week of Lena's with a fixed figure:
        // the service records it as a correction of the first import.
        if self.reimport.is_none() && self.t(week.end()) > 0.6 {
            let lena = 2;
            let previous = Period::containing(PeriodKind::Week, minus(week.start(), 1));
            if let Some(meetings) = self.last_meetings.get(&(lena, previous)).copied() {
                rows.push(
                    json!({ "rep_id": self.reps[lena].id, "metric": "meetings_booked",
                                  "period": previous.to_string(), "value": meetings + 2 }),
                );
                self.reimport = Some((lena, previous));
            }
        }
        self.import("weekly import", rows).await
    }

    /// Sends `rows` as one measurement import under the CRM's token (nothing
    /// when there are none).
    async fn import(&mut self, step: &str, rows: Vec<Value>) -> Result<(), DemoError> {
        if rows.is_empty() {
            return Ok(());
        }
        let token = self.crm.clone();
        self.send(
            step,
            Method::POST,
            "/v1/measurements",
            &token,
            Value::Array(rows),
        )
        .await?;
        Ok(())
    }

    async fn import_month(&mut self, month: Period) -> Result<(), DemoError> {
        let mut rows = vec![];
        for (i, cast) in CAST.iter().enumerate() {
            // Role on the month's last day decides what is measured.
            let promoted_in = cast.story == Story::Promoted && month.end() >= monday(self.at(0.55));
            let role = if promoted_in { AE } else { cast.role };
            if !self.measured(i, month) || role != AE {
                continue;
            }
            let story = cast.story;
            let (t, x) = (self.t(month.end()), self.tenure_share(i, month.end()));
            let index = month.ordinal_since(self.reps[i].start).unwrap_or(99);
            let ramp = Self::ramp(&[30, 60, 85], index);
            let n = story.quantity(t, x);
            let id = self.reps[i].id;
            let pipeline = (120_000.0 * n * ramp * self.noise() / 500.0).round() * 500.0;
            let revenue = (50_000.0 * n * ramp * self.noise() / 100.0).round() * 100.0;
            rows.push(
                json!({ "rep_id": id, "metric": "pipeline_created", "period": month.to_string(),
                              "value": pipeline }),
            );
            rows.push(
                json!({ "rep_id": id, "metric": "revenue_closed", "period": month.to_string(),
                              "value": revenue }),
            );
        }
        self.import("monthly import", rows).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unexpected(result: Result<Vec<Uuid>, DemoError>) -> (String, String) {
        match result {
            Err(DemoError::Unexpected { step, what }) => (step, what),
            other => panic!("expected DemoError::Unexpected, got {other:?}"),
        }
    }

    #[test]
    fn a_session_answer_without_action_item_ids_stops_the_seed_with_an_error_naming_them() {
        let answer = json!({ "id": Uuid::nil(), "stream_version": 3 });
        let (step, what) = unexpected(Seeder::action_item_ids("coaching session", &answer, 2));
        assert_eq!(step, "coaching session");
        assert!(
            what.contains("action_item_ids") && what.contains("2 action item(s)"),
            "{what}"
        );
        let message = DemoError::Unexpected { step, what }.to_string();
        assert!(
            message.contains("the answer had no action_item_ids"),
            "{message}"
        );
    }

    #[test]
    fn a_session_answer_with_fewer_action_item_ids_than_items_sent_is_an_error() {
        let answer = json!({ "action_item_ids": [Uuid::nil()] });
        let (_, what) = unexpected(Seeder::action_item_ids("coaching session", &answer, 2));
        assert!(
            what.contains("one action item id per action item sent (2)"),
            "{what}"
        );
        let answer = json!({ "action_item_ids": ["not-a-uuid"] });
        let (_, what) = unexpected(Seeder::action_item_ids("coaching session", &answer, 1));
        assert!(what.contains("not-a-uuid"), "{what}");
    }

    #[test]
    fn a_session_answer_gives_its_action_item_ids_in_order() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let answer = json!({ "action_item_ids": [a, b] });
        let ids = Seeder::action_item_ids("coaching session", &answer, 2).expect("two ids");
        assert_eq!(ids, [a, b]);
        let none =
            Seeder::action_item_ids("coaching session", &json!({ "action_item_ids": [] }), 0)
                .expect("a session without items");
        assert!(none.is_empty());
    }
}
