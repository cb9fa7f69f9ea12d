// Assertions on the package's errors, shared by the test files.
import assert from 'node:assert/strict';
import { TurnoutError } from '../../../pkg/node.js';

/** Runs `fn`, which must throw a TurnoutError with `code` (and a message matching `message`); returns it. */
export function throwsTurnout(fn, code, message) {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof TurnoutError, `expected a TurnoutError, got ${err}`);
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'TurnoutError');
  assert.equal(err.code, code, err.message);
  if (message) assert.match(err.message, message);
  return err;
}
