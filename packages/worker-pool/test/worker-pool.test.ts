import { describe, it } from 'node:test';
