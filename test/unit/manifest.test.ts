// The Marketplace side of package.json: the icon (rendered from media/icon.svg by scripts/render-icon.ts), the gallery
// banner, the capabilities and their reasons, the Get Started walkthrough (its buttons, completion events and media),
// the CHANGELOG, and that vsce packs all of them. The walkthrough in real VS Code: test/e2e/suite/9-walkthrough.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { iconSvg } from '../../scripts/render-icon.ts';
import { repoRoot } from '../helpers/paths.ts';

interface Step {
  id: string;
  title: string;
  description: string;
  media: { image: string; altText: string };
  completionEvents: string[];
}
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const commands = new Set<string>(pkg.contributes.commands.map((c: { command: string }) => c.command));

test('the icon: a 256×256 PNG rendered from media/icon.svg, which the script reproduces exactly', async () => {
  assert.equal(pkg.icon, 'media/icon.png');
  const meta = await sharp(path.join(repoRoot, pkg.icon)).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 256, 256]);
  assert.equal(fs.readFileSync(path.join(repoRoot, 'media', 'icon.svg'), 'utf8'), iconSvg());
  // Not a flat picture: the noisy half and the clean half differ.
  const { data } = await sharp(path.join(repoRoot, pkg.icon)).greyscale().raw().toBuffer({ resolveWithObject: true });
  assert.ok(new Set(data).size > 20, 'the icon has fewer than 20 grey levels');
  assert.match(pkg.galleryBanner.color, /^#[0-9a-f]{6}$/i);
  assert.ok(['dark', 'light'].includes(pkg.galleryBanner.theme));
});

test('capabilities: limited in untrusted workspaces (two settings restricted), no virtual workspaces; with reasons', () => {
  const { untrustedWorkspaces: u, virtualWorkspaces: v } = pkg.capabilities;
  assert.equal(u.supported, 'limited');
  assert.ok(u.description.length > 80);
  for (const key of u.restrictedConfigurations)
    assert.ok(key in pkg.contributes.configuration.properties, `${key} is not a setting`);
  assert.deepEqual(u.restrictedConfigurations, ['ddpm.backend', 'ddpm.defaultCheckpoint']);
  assert.equal(v.supported, false);
  assert.ok(v.description.length > 80);
});

test('the walkthrough: sample → open a checkpoint → train on a folder → interpolate, each with one button and media', () => {
  const [w] = pkg.contributes.walkthroughs;
  assert.equal(w.id, 'ddpm.getStarted');
  const steps = w.steps as Step[];
  const buttons = steps.map((s) => [...s.description.matchAll(/\]\(command:([\w.]+)\)/g)].map((m) => m[1]));
  assert.deepEqual(buttons, [['ddpm.sample'], ['ddpm.openCheckpoint'], ['ddpm.train'], ['ddpm.interpolate']]);
  for (const [i, s] of steps.entries()) {
    assert.ok(s.completionEvents.includes(`onCommand:${buttons[i][0]}`), `${s.id}: the button does not complete it`);
    for (const e of s.completionEvents) assert.ok(commands.has(e.replace(/^onCommand:/, '')), `${s.id}: ${e}`);
    const image = path.join(repoRoot, s.media.image);
    assert.ok(fs.existsSync(image), `${s.media.image} is missing`);
    assert.equal(fs.readFileSync(image).toString('latin1', 1, 4), 'PNG');
    assert.ok(s.media.altText.length > 30, `${s.id}: alt text`);
  }
});

test('CHANGELOG.md has a section for this version; README shows the screenshots the walkthrough uses', () => {
  const changelog = fs.readFileSync(path.join(repoRoot, 'CHANGELOG.md'), 'utf8');
  assert.match(changelog, new RegExp(`^## ${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  for (const s of pkg.contributes.walkthroughs[0].steps as Step[])
    assert.ok(readme.includes(`](${s.media.image})`), `README does not show ${s.media.image}`);
});

test('vsce packs the icon, the walkthrough media and the CHANGELOG, and not the icon source', () => {
  const vsce = path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
  const files = execFileSync(process.execPath, [vsce, 'ls', '--no-dependencies'], { cwd: repoRoot, encoding: 'utf8' })
    .split(/\r?\n/)
    .filter(Boolean);
  const steps = pkg.contributes.walkthroughs[0].steps as Step[];
  for (const f of ['media/icon.png', 'CHANGELOG.md', 'README.md', ...steps.map((s) => s.media.image)])
    assert.ok(files.includes(f), `${f} is not packed`);
  assert.ok(!files.includes('media/icon.svg'));
});
