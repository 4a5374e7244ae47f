// The resolved config as a tree, for `unblock check` and the startup banner.
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveModuleUrl } from './build.js';
import type { LoadedConfig, ServerConfig, Step } from './types.js';

/** The servers, their chains and pools as text lines (no trailing newline), paths resolved against the config's folder. */
export function formatTree(config: LoadedConfig, { cwd = process.cwd() }: { cwd?: string } = {}): string {
  const lines: string[] = [];
  for (const server of config.servers) {
    lines.push(`${server.name} ${formatAddress(server)}${server.health ? ` (health ${server.health})` : ''}`);
    addSteps(lines, server.chain, '', config, cwd);
  }
  for (const [name, options] of Object.entries(config.pools)) lines.push(`pool ${name} ${formatOptions(options)}`.trimEnd());
  return lines.join('\n');
}

/** `http://127.0.0.1:3000` (`https:` with `tls`), with brackets for IPv6. */
export function formatAddress(server: Pick<ServerConfig, 'host' | 'port'> & Partial<Pick<ServerConfig, 'tls'>>): string {
  return `${server.tls ? 'https' : 'http'}://${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
}

function addSteps(lines: string[], steps: readonly Step[], indent: string, config: LoadedConfig, cwd: string): void {
  if (steps.length === 0) lines.push(`${indent}└─ (empty: every request gets 404)`);
  steps.forEach((step, i) => {
    const last = i === steps.length - 1;
    lines.push(`${indent}${last ? '└─' : '├─'} ${formatStep(step, config, cwd)}`);
    if (step.kind === 'mount') addSteps(lines, step.chain, `${indent}${last ? '   ' : '│  '}`, config, cwd);
  });
}

function formatStep(step: Step, config: LoadedConfig, cwd: string): string {
  switch (step.kind) {
    case 'mount':
      return `mount ${step.route}`;
    case 'app':
      return `app ${formatModule(step.module, step.path, config, cwd)}`;
    case 'use':
      return `use ${formatModule(step.module, step.path, config, cwd)}${step.export ? ` .${step.export}` : ''}${step.hasOptions ? ` ${formatValue(step.options)}` : ''}`;
    case 'item':
      return `${typeof step.value === 'function' ? step.value.name || 'anonymous' : 'app'} (from the JS config)`;
    case 'builtin':
      return `${step.name} ${formatOptions(step.options)}`.trimEnd();
  }
}

function formatModule(module: unknown, path: string, config: LoadedConfig, cwd: string): string {
  if (typeof module !== 'string') return typeof module === 'function' ? `${module.name || 'anonymous'} (from the JS config)` : '(object from the JS config)';
  try {
    const url = resolveModuleUrl(module, path, config);
    const file = url.startsWith('file:') ? relative(cwd, fileURLToPath(url)) : url;
    return file === module || `./${file}` === module ? module : `${module} → ${file}`;
  } catch {
    return `${module} (not found)`;
  }
}

function formatOptions(options: Record<string, unknown>): string {
  return Object.keys(options).length === 0 ? '' : formatValue(options);
}

function formatValue(value: unknown): string {
  if (typeof value === 'function') return value.name ? `[function ${value.name}]` : '[function]';
  if (Array.isArray(value)) return `[${value.map(formatValue).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{ ${Object.entries(value)
      .map(([k, v]) => `${k}: ${formatValue(v)}`)
      .join(', ')} }`;
  }
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
