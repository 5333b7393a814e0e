// Signing in at the company's identity provider, in headless Chromium, as a
// person does it: Trellis's sign-in page, the provider's login and consent
// pages (oidc-provider.mjs), and back. Run by tests/src/oidc_browser.rs
// against a Trellis and a provider it started:
//
//   node tests/browser/oidc.mjs CONFIG.json
//
// CONFIG names Trellis (`base`), the provider (`issuer`), where screenshots
// go (`artifacts`), the linked leader and the identity linked to nobody, and
// `sessionFile`: where the leader's session cookie is written, for the Rust
// test to use without a browser. Prints one line per step and `ok: oidc` at
// the end; exits 1 at the first step that fails, saying why.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { base, issuer, artifacts, leader, stranger } = config;
const DESKTOP = { width: 1280, height: 900 };
const PASSWORD = 'any password will do';

const step = (name) => console.log(`step: ${name}`);

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});

/** Script errors any Trellis page raised. */
const scriptErrors = [];

/** A browser of its own: no Trellis session, no provider session. */
async function freshBrowser() {
  const context = await browser.newContext({ viewport: DESKTOP });
  // The suite runs beside this on two cores: allow a slow answer.
  context.setDefaultTimeout(90_000);
  context.setDefaultNavigationTimeout(90_000);
  const page = await context.newPage();
  page.on('pageerror', (e) => {
    if (page.url().startsWith(base)) scriptErrors.push(`${page.url()}: ${e.message}`);
  });
  return { context, page };
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `oidc-${name}.png`), fullPage: true });
}

const main = (page) => page.locator('main').innerText();

/** From Trellis's sign-in page to the provider's consent page, as `login`. */
async function atTheProvider(page, login, shots) {
  const signIn = await page.goto(`${base}/`);
  assert.equal(signIn.status(), 200, 'the sign-in page');
  const button = page.getByRole('link', { name: 'Sign in with your company account' });
  assert.equal(await button.count(), 1, 'the sign-in page offers the company account');
  if (shots) await shot(page, 'a-sign-in-page');
  await button.click();
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/interaction/`));
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', PASSWORD);
  if (shots) await shot(page, 'b-provider-login');
  await page.locator('button[type="submit"]').click();
  // The provider asks whether Trellis may have the email and profile.
  const allow = page.getByRole('button', { name: 'Continue' });
  await allow.waitFor();
  assert.match(await page.locator('body').innerText(), /email/, 'consent names the email scope');
  if (shots) await shot(page, 'c-provider-consent');
  return allow;
}

try {
  step('a: a leader linked by email signs in with the company account and sees their team');
  const first = await freshBrowser();
  const allow = await atTheProvider(first.page, leader.login, true);
  const signedIn = first.page.waitForResponse((r) =>
    r.url().startsWith(`${base}/auth/oidc/callback`),
  );
  await allow.click();
  const landed = await signedIn;
  if (landed.status() !== 303) {
    await first.page.waitForLoadState();
    assert.fail(`the callback answered ${landed.status()}:\n${await main(first.page)}`);
  }
  await first.page.waitForURL(`${base}/home`);
  const home = await main(first.page);
  assert.match(home, /Teams/);
  assert.ok(home.includes(leader.team), `the leader's team on /home:\n${home}`);
  assert.ok(!home.includes(leader.otherTeam), `another leader's team on /home:\n${home}`);
  await shot(first.page, 'd-leader-home');
  const cookies = await first.context.cookies(base);
  const session = cookies.find((c) => c.name === 'trellis_session');
  assert.ok(session, `a session cookie: ${cookies.map((c) => c.name).join(', ')}`);
  assert.ok(session.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Lax');
  assert.ok(
    !cookies.some((c) => c.name === 'trellis_signin'),
    'the sign-in flow cookie is gone once used',
  );
  writeFileSync(config.sessionFile, session.value);

  step('b: an identity linked to nobody sees whom to ask, and is not signed in');
  const second = await freshBrowser();
  const allowStranger = await atTheProvider(second.page, stranger.login, false);
  const answered = second.page.waitForResponse((r) =>
    r.url().startsWith(`${base}/auth/oidc/callback`),
  );
  await allowStranger.click();
  const callback = await answered;
  assert.equal(callback.status(), 403, 'the callback for an unlinked identity');
  await second.page.waitForLoadState();
  const refused = await main(second.page);
  assert.match(refused, /Your account is not linked to Trellis yet/);
  assert.ok(refused.includes(stranger.login), `names who signed in:\n${refused}`);
  assert.ok(refused.includes(config.adminName), `names the admin to ask:\n${refused}`);
  await shot(second.page, 'e-not-linked');
  const strangerCookies = await second.context.cookies(base);
  assert.ok(
    !strangerCookies.some((c) => c.name === 'trellis_session'),
    'no session for an unlinked identity',
  );
  const home2 = await second.page.goto(`${base}/home`);
  assert.equal(home2.status(), 401, '/home for the unlinked identity');

  assert.deepEqual(scriptErrors, [], 'no Trellis page raised a script error');
  console.log('ok: oidc');
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await browser.close();
}
