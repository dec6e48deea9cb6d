// The expectations file: every case with its status, and a reason for each case that does not pass.
// CI compares a run against it and fails on drift in either direction.
import { readFileSync, writeFileSync } from 'node:fs';
import type { CaseResult, Status } from './runner.js';

export interface Expectation { status: Status; reason?: string }
export interface ExpectationsFile { backend: string; cases: Record<string, Expectation> }

export function readExpectations(path: string): ExpectationsFile {
  return JSON.parse(readFileSync(path, 'utf8')) as ExpectationsFile;
}

export function writeExpectations(path: string, backend: string, results: CaseResult[], previous?: ExpectationsFile): void {
  const cases: Record<string, Expectation> = {};
  for (const r of [...results].sort((a, b) => a.name.localeCompare(b.name))) {
    const prev = previous?.cases[r.name];
    // A skip stays a skip, and an unchanged status keeps its written reason; others take the run's message.
    if (prev?.status === 'skipped' || (prev?.status === r.status && prev.reason)) cases[r.name] = prev!;
    else cases[r.name] = r.status === 'passed' ? { status: 'passed' } : { status: r.status, reason: r.message };
  }
  writeFileSync(path, formatExpectations({ backend, cases }));
}

export interface Drift { name: string; expected: Status | 'absent'; actual: Status; message: string }

/** Cases whose status differs from the file; only cases that ran are compared. */
export function drift(exp: ExpectationsFile, results: CaseResult[]): Drift[] {
  const out: Drift[] = [];
  for (const r of results) {
    const e = exp.cases[r.name];
    if (!e) { out.push({ name: r.name, expected: 'absent', actual: r.status, message: r.message }); continue; }
    if (e.status !== r.status) out.push({ name: r.name, expected: e.status, actual: r.status, message: r.message });
  }
  return out;
}

/** One case per line, so a diff of the file reads as a list of status changes. */
export function formatExpectations(f: ExpectationsFile): string {
  const lines = Object.entries(f.cases).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{\n "backend": ${JSON.stringify(f.backend)},\n "cases": {\n${lines.join(',\n')}\n }\n}\n`;
}
