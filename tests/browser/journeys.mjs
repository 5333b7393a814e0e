// The dashboard's journeys in headless Chromium, as the people who use it
// take them, and axe-core on every page and form in each role. Run by
// tests/src/browser.rs against a Trellis it started:
//
//   node tests/browser/journeys.mjs CONFIG.json
//
// CONFIG names the server (`base`), where screenshots go (`artifacts`), the
// sign-in tokens and the ids the journeys need. Prints one line per step;
// exits 1 at the first step that fails, saying why.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { base, artifacts, rep, team } = config;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

const step = (name) => console.log(`step: ${name}`);

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});

/** The focused element's outline: its style, width, and contrast with the
 *  first background behind the element, and whether CSS sees it focused
 *  (run in the page). */
function focusRing() {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
  const luminance = ([r, g, b]) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let behind = 'rgb(255, 255, 255)';
  for (let p = e.parentElement; p; p = p.parentElement) {
    const c = getComputedStyle(p).backgroundColor;
    if (c !== 'transparent' && !/rgba\(.*, 0\)$/.test(c)) {
      behind = c;
      break;
    }
  }
  const [a, b] = [luminance(rgb(style.outlineColor)), luminance(rgb(behind))];
  return {
    style: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
    contrast: Math.round(((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)) * 10) / 10,
    color: style.outlineColor,
    behind,
    styled: e.matches(':focus'),
  };
}

/** Script errors any page raised. */
const scriptErrors = [];

/** A browser of its own for `token`, signed in, on `viewport`. */
async function signedIn(token, viewport = DESKTOP, options = {}) {
  const context = await browser.newContext({ viewport, ...options });
  // The suite runs beside this on two cores: allow a slow answer.
  context.setDefaultTimeout(90_000);
  context.setDefaultNavigationTimeout(90_000);
  const page = await context.newPage();
  page.on('pageerror', (e) => scriptErrors.push(`${page.url()}: ${e.message}`));
  const landed = await page.goto(`${base}/login?token=${token}`);
  assert.ok(landed.ok(), `signing in answered ${landed.status()}`);
  return page;
}

// Waits for `page` to land on `url` after a form was submitted twice. The
// browser aborts the first submission's navigation for the second one, and a
// wait that was watching the first fails with net::ERR_ABORTED; the second
// one still lands, so it is waited for then.
async function waitForURLAfterDoubleSubmit(page, url) {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.waitForURL(url);
      return;
    } catch (e) {
      if (attempt >= 3 || !String(e.message).includes('ERR_ABORTED')) throw e;
    }
  }
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `journey-${name}.png`), fullPage: true });
}

/** The text of the page's main content. */
const main = (page) => page.locator('main').innerText();

try {
  // (a) A leader, on a phone, logs a coaching session with two action items.
  step('a: a leader logs a coaching session with two action items on a 390-pixel screen');
  const leader = await signedIn(config.leader, PHONE);
  await leader.goto(`${base}/reps/${rep.id}/coaching`);
  await leader.check(`input[name="focus.${config.competency}"]`);
  await leader.fill('#notes', 'Walked through two discovery calls; agreed on a call plan.');
  await leader.fill('[name="action_items[0].description"]', 'Prepare three discovery questions per call');
  await leader.fill('[name="action_items[0].due_on"]', config.due);
  await leader.fill('[name="action_items[1].description"]', 'Shadow a senior AE on a demo');
  await leader.fill('[name="action_items[1].due_on"]', config.due);
  await shot(leader, 'a-coaching-form-phone');
  await leader.click('button.primary');
  await leader.waitForURL(/recorded=coaching/);
  assert.match(await main(leader), /Coaching session recorded/);
  assert.match(await main(leader), /Prepare three discovery questions per call/);
  await shot(leader, 'a-rep-page-after-coaching-phone');
  await leader.goto(`${base}/reps/${rep.id}/audit`);
  assert.match(await main(leader), /CoachingSessionHeld/);
  await shot(leader, 'a-audit-trail-phone');

  // (b) The rep acknowledges feedback and completes an item; the leader's
  // team page no longer counts it overdue.
  step('b: the rep acknowledges feedback and completes an item; the team page reflects it');
  const desk = await signedIn(config.leader);
  await desk.goto(`${base}/teams/${team}`);
  assert.match(await main(desk), /action items? overdue/);
  const repPage = await signedIn(rep.token, PHONE);
  await repPage.goto(`${base}/reps/${rep.id}`);
  await shot(repPage, 'b-rep-to-do-phone');
  await repPage.locator('#todo form', { hasText: 'Acknowledge' }).first().locator('button').click();
  await repPage.waitForURL(/recorded=acknowledged/);
  await repPage.locator('#todo form', { hasText: 'Mark done' }).first().locator('button').click();
  await repPage.waitForURL(/recorded=completed/);
  assert.match(await main(repPage), /Marked done/);
  let reflected = false;
  for (let i = 0; i < 50 && !reflected; i++) {
    await desk.goto(`${base}/teams/${team}`);
    reflected = !/action items? overdue/.test(await main(desk));
    if (!reflected) await desk.waitForTimeout(200);
  }
  assert.ok(reflected, 'the team page still shows the item overdue');
  await shot(desk, 'b-team-page-after');

  // (c) A double click records once.
  step('c: a double click on "Record feedback" records once');
  await desk.goto(`${base}/reps/${rep.id}/feedback`);
  await desk.selectOption('#competency_id', config.competency);
  await desk.fill('#note', config.doubleClickNote);
  await desk.dblclick('button.primary');
  await waitForURLAfterDoubleSubmit(desk, /recorded=feedback/);

  // (d) A form opened before someone else recorded something says what
  // changed and records nothing.
  step('d: a stale form says what changed since it was opened');
  await desk.goto(`${base}/reps/${rep.id}/support-requests/${config.supportRequest}/resolution`);
  await desk.fill('#resolution', 'Renewed the dialer licence.');
  const meanwhile = await fetch(`${base}/v1/reps/${rep.id}/feedback`, {
    method: 'POST',
    headers: { authorization: `Bearer ${config.admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      leader_id: config.leaderId,
      competency_id: config.competency,
      kind: 'praise',
      note: 'Recorded by another leader meanwhile.',
      given_on: config.today,
    }),
  });
  assert.equal(meanwhile.status, 201, await meanwhile.text());
  await desk.click('button.primary');
  assert.match(await main(desk), /Since you opened this form, someone else recorded: Praise on /);
  assert.equal(await desk.inputValue('#resolution'), 'Renewed the dialer licence.');
  await shot(desk, 'd-stale-form');

  // (e) A refused form keeps what was typed, each error beside its field.
  step('e: a refused assessment shows each error beside its field with the input kept');
  await desk.goto(`${base}/reps/${rep.id}/assessment?competency=${config.competency}`);
  // Level 6 is no choice in the form: a hand-edited page sends it.
  await desk.locator('input[name="level"]').first().evaluate((radio) => {
    radio.value = '6';
    radio.checked = true;
  });
  await desk.fill('#evidence', '   ');
  await desk.fill('#assessed_on', config.beforeJoining);
  await desk.click('button.primary');
  assert.match(await main(desk), /Nothing was recorded/);
  for (const id of ['level-error', 'evidence-error']) {
    assert.equal(await desk.locator(`#${id}`).count(), 1, `${id} beside its field`);
  }
  assert.equal(await desk.inputValue('#assessed_on'), config.beforeJoining);
  await shot(desk, 'e-refused-assessment');
  // Corrected but for the date: the domain's refusal stands beside the date.
  await desk.locator('input[name="level"][value="3"]').check();
  await desk.fill('#evidence', 'Asked two open questions before pitching.');
  await desk.click('button.primary');
  assert.equal(await desk.locator('#assessed_on-error').count(), 1, 'the date refused beside it');
  await shot(desk, 'e-refused-date');

  // (f) An admin uploads 100 rows with 3 bad ones.
  step('f: a CSV of 100 rows with 3 bad ones: the bad rows listed, nothing recorded until confirmed');
  const admin = await signedIn(config.admin);
  await admin.goto(`${base}/admin`);
  await shot(admin, 'f-admin-set-up');
  await admin.goto(`${base}/admin/measurements`);
  const file = (csv) => ({ name: 'crm-export.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await admin.setInputFiles('#file', file(config.csvBad));
  await admin.click('button.primary');
  assert.match(await main(admin), /3 rows cannot be recorded\. Correct them in the file/);
  await shot(admin, 'f-csv-refused');
  await admin.setInputFiles('#file', file(config.csvGood));
  await admin.click('button.primary');
  assert.match(await main(admin), /100 rows for 4 reps; nothing is recorded yet/);
  await shot(admin, 'f-csv-preview');
  await admin.click('text=Record all 100 rows');
  assert.match(await main(admin), /Recorded: 100 rows/);

  // (g) The coaching form with the keyboard alone.
  step('g: a coaching session logged with the keyboard alone');
  const keys = await signedIn(config.leader, PHONE);
  await keys.goto(`${base}/reps/${rep.id}/coaching`);
  // The page the keys go to has the window's focus, as a person's would.
  await keys.bringToFront();
  let [typed, focused] = [false, false];
  for (let i = 0; i < 60; i++) {
    await keys.keyboard.press('Tab');
    const at = await keys.evaluate(() => {
      const e = document.activeElement;
      return { name: e?.getAttribute('name') ?? '', tag: e?.tagName ?? '', text: e?.textContent ?? '' };
    });
    // Every stop shows where it is: a ring of at least 3:1 against what is
    // behind it (WCAG 1.4.11).
    // (The date field's calendar button, inside the browser's own part of
    // the field, leaves the field itself unfocused to CSS: the browser
    // draws that one.)
    const ring = await keys.evaluate(focusRing);
    assert.ok(
      !ring.styled || (ring.style !== 'none' && ring.width >= 2 && ring.contrast >= 3),
      `the focus ring on ${at.tag} ${at.name || at.text.trim()}: ${JSON.stringify(ring)}`,
    );
    if (at.name.startsWith('focus.') && !focused) {
      await keys.keyboard.press('Space');
      focused = true;
    }
    if (at.name === 'notes') {
      await keys.keyboard.type('Role-played the budget objection, keyboard only.');
      typed = true;
    }
    if (typed && at.tag === 'BUTTON' && /Record/.test(at.text)) {
      await keys.keyboard.press('Enter');
      break;
    }
  }
  await keys.waitForURL(/recorded=coaching/);
  await shot(keys, 'g-keyboard-recorded');

  // axe-core on every page and form, in each role.
  step('axe: every page and form in each role, no serious or critical violation');
  const pages = {
    leader: [
      '/home', `/teams/${team}`, `/reps/${rep.id}`, `/reps/${rep.id}/review`, `/reps/${rep.id}/audit`,
      `/reps/${rep.id}/coaching`, `/reps/${rep.id}/feedback`,
      `/reps/${rep.id}/assessment?competency=${config.competency}`, `/reps/${rep.id}/measurements/new`,
      `/reps/${rep.id}/improvement-plans/new`, `/leaders/${config.leaderId}`, `/people/${config.leaderId}/export`,
      `/reps/${rep.id}/support-requests/${config.supportRequest}/acknowledgement`,
      `/reps/${rep.id}/support-requests/${config.supportRequest}/resolution`,
      `/reps/${rep.id}/corrections/new?fact=${config.feedback}&as=retract`,
      `/reps/${rep.id}/corrections/new?fact=${config.feedback}&as=level`,
      `/reps/${rep.id}/reviews/new?from=${config.today}&to=${config.today}`,
    ],
    rep: [`/reps/${rep.id}`, `/reps/${rep.id}/support-requests/new`, `/reps/${rep.id}/audit`, `/people/${rep.id}/export`],
    admin: [
      '/admin', '/admin/teams/new', '/admin/reps/new', '/admin/competencies/new', '/admin/standards/new',
      '/admin/measurements', '/admin/webhooks', `/teams/${team}`,
      `/admin/teams/${team}/name`, `/admin/teams/${team}/leaders`, `/admin/reps/${rep.id}/team`,
      `/admin/reps/${rep.id}/role`, `/admin/reps/${rep.id}/departure`, `/admin/reps/${rep.id}/erasure`,
      `/admin/competencies/${config.competency}/edit`, `/admin/competencies/${config.competency}/retirement`,
      `/admin/standards/${config.standard}/revision`, `/admin/standards/${config.standard}/retirement`,
      '/admin/access', '/admin/service-accounts', '/sign-in?link=an-example-link', `/people/${rep.id}/export`,
    ],
    auditor: ['/home', `/reps/${rep.id}`, `/reps/${rep.id}/audit`, '/admin/access'],
  };
  const tokens = { leader: config.leader, rep: rep.token, admin: config.admin, auditor: config.auditor };
  const found = [];
  for (const [role, paths] of Object.entries(pages)) {
    // axe is injected as a script: this browser lets it past the pages' CSP.
    const page = await signedIn(tokens[role], DESKTOP, { bypassCSP: true });
    for (const path of paths) {
      const answer = await page.goto(`${base}${path}`);
      assert.equal(answer.status(), 200, `${role} ${path}`);
      await page.addScriptTag({ path: AXE });
      const violations = await page.evaluate(async () => {
        // eslint-disable-next-line no-undef
        const result = await axe.run(document, { resultTypes: ['violations'] });
        return result.violations
          .filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
      });
      for (const v of violations) found.push(`${role} ${path}: ${v}`);
    }
  }
  assert.deepEqual(found, [], `axe-core found:\n${found.join('\n')}`);

  // (g) Last, as it ends the rep's record: an admin, on a phone, erases a
  // rep's personal data; a reason left empty is named beside its field and
  // nothing is erased; then the rep reads as an erased person.
  step('g: an admin erases a rep on a 390-pixel screen; the rep page shows an erased person');
  const eraser = await signedIn(config.admin, PHONE);
  await eraser.goto(`${base}/admin/reps/${config.erase}/erasure`);
  assert.match(await main(eraser), /cannot be undone/);
  await eraser.fill('#reason', ' ');
  await eraser.click('button.primary');
  assert.match(await eraser.locator('#reason-error').innerText(), /\S/);
  assert.match(await main(eraser), /Nothing was recorded/);
  await shot(eraser, 'g-erasure-form-error-phone');
  await eraser.fill('#reason', 'Asked to be forgotten under GDPR article 17 (ticket 4411)');
  await shot(eraser, 'g-erasure-form-phone');
  await eraser.click('button.primary');
  await eraser.waitForURL((url) => url.pathname === '/admin');
  // The read models follow the log within moments.
  const eventually = async (path, pattern) => {
    for (let i = 0; i < 100 && !pattern.test(await main(eraser)); i += 1) {
      await eraser.waitForTimeout(200);
      await eraser.goto(`${base}${path}`);
    }
    assert.match(await main(eraser), pattern);
  };
  await eventually('/admin', /personal data erased/);
  await shot(eraser, 'g-admin-after-erasure-phone');
  await eraser.goto(`${base}/reps/${config.erase}`);
  await eventually(`/reps/${config.erase}`, /Erased person/);
  await shot(eraser, 'g-erased-rep-page-phone');

  // (h) The admin erases a leader's name the same way, from the Leaders
  // table; the team page then names an erased person.
  step('h: an admin erases a leader on a 390-pixel screen; the team page shows an erased person');
  await eraser.goto(`${base}/admin`);
  assert.match(await main(eraser), /Ezra Eraseme/);
  await eraser.click(`a[href="/admin/leaders/${config.eraseLeader}/erasure"]`);
  assert.match(await main(eraser), /cannot be undone/);
  await eraser.fill('#reason', 'Left the company and asked to be forgotten (ticket 4412)');
  await shot(eraser, 'h-leader-erasure-form-phone');
  await eraser.click('button.primary');
  await eraser.waitForURL((url) => url.pathname === '/admin');
  assert.doesNotMatch(await main(eraser), /went wrong|could not/i);
  for (let i = 0; i < 100 && /Ezra Eraseme/.test(await main(eraser)); i += 1) {
    await eraser.waitForTimeout(200);
    await eraser.goto(`${base}/admin`);
  }
  // The first table after the heading (a "Saved." notice may stand between).
  const leaders = await eraser.locator('#leaders ~ div.scroll').first().locator('table').innerText();
  assert.match(leaders, /Erased person[\s\S]*personal data erased/);
  assert.doesNotMatch(leaders, /Ezra Eraseme/);
  await eraser.locator('#leaders').scrollIntoViewIfNeeded();
  await eraser.screenshot({ path: join(artifacts, "journey-h-admin-leaders-after-erasure-phone.png") });
  await eraser.goto(`${base}/teams/${config.team}`);
  assert.doesNotMatch(await main(eraser), /Ezra Eraseme/);
  await shot(eraser, 'h-team-page-after-leader-erasure-phone');
  assert.deepEqual(scriptErrors, [], 'no page raised a script error');
  console.log('ok: every journey');
} catch (e) {
  console.error(`failed: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
