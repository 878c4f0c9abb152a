
// ---- Appended to app.js by build.sh: Sluice's guard (docs/mapper-guide.md). ----
// A throw that is not a map-error (a TypeError, a bug) would otherwise reach
// the host as a trap with no trace of its message. The guard turns it into
// `internal` with the message and the line in app.js it came from. It is
// appended rather than imported so app.js keeps its own line numbers.
function __sluiceGuard(fn) {
  const KINDS = ['malformed-payload', 'unsupported-event', 'bad-config', 'internal'];
  return function guarded(...args) {
    try {
      return fn(...args);
    } catch (e) {
      if (e !== null && typeof e === 'object' && !(e instanceof Error) && KINDS.includes(e.kind)) {
        throw { kind: e.kind, message: String(e.message) };
      }
      throw { kind: 'internal', message: __sluiceDescribe(e) };
    }
  };
}

function __sluiceDescribe(e) {
  if (!(e instanceof Error)) {
    let text;
    try {
      text = JSON.stringify(e);
    } catch (_) {
      text = String(e);
    }
    return `uncaught throw of ${text}: throw {kind, message} for a map-error`;
  }
  // The first frame in the author's file, as `app.js:LINE:COLUMN`.
  const frames = String(e.stack || '').split('\n');
  const frame = frames.find((f) => /app\.js:\d+/.test(f) && !f.includes('__sluice') && !f.startsWith('guarded@'));
  const at = frame ? ` at ${frame.replace(/^.*?@/, '').replace(/^.*\//, '')}` : '';
  return `${e.name}: ${e.message}${at}`;
}

// Function declarations are mutable bindings, and exports see the new value.
try {
  mapToTicketEvent = __sluiceGuard(mapToTicketEvent);
} catch (_) {
  // `export const mapToTicketEvent = ...` cannot be rewrapped: the guide says
  // to declare exports with `export function`.
}
try {
  mapFromTicketEvent = __sluiceGuard(mapFromTicketEvent);
} catch (_) {}
