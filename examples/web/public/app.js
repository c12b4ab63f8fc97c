/**
 * The timer service from a web page: connect to the WebSocket bridge that
 * served this page, call `version`, `echo` and `schedule`, and list each
 * `on_echo_fired` event as it arrives. A plain ES module, no bundler: the
 * bridge serves the ipcbor browser client at /ipcbor/browser/index.js.
 */
import { connect } from '/ipcbor/browser/index.js';

const $ = (id) => document.getElementById(id);

// A bridge started with a token wants it from every client. The page takes
// it from its fragment (#token=...), which the browser never sends anywhere.
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? undefined;

/** An error as a user should read it: its code, then its text. */
const explain = (err) => (err?.code ? `${err.code}: ${err.message}` : String(err));

/** Put `text` in the output `id`, in red when it is an error. */
function show(id, text, isError = false) {
  $(id).textContent = text;
  $(id).classList.toggle('error', isError);
}

function showState(state, detail) {
  $('state').dataset.state = state;
  $('state').textContent = detail ? `${state} (${detail})` : state;
  for (const button of document.querySelectorAll('form button')) button.disabled = state !== 'open';
}

/** Make one call and show its result, or its error, in the output `id`. */
async function run(id, call) {
  show(id, '…');
  try {
    const result = await call();
    show(id, typeof result === 'string' ? result : JSON.stringify(result, null, 2));
  } catch (err) {
    show(id, explain(err), true);
  }
}

function addEvent(event) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${event.payload.message}  (echoCount ${event.payload.echoCount})`;
  $('events').prepend(li);
}

async function main() {
  let client;
  try {
    // '/': the bridge that served this page. reconnect: when the connection
    // drops, dial again (the subscription below is restored).
    client = await connect('/', { token, reconnect: true });
  } catch (err) {
    showState('failed');
    show('connection-error', explain(err), true);
    return;
  }

  // The state now, then every change: open, reconnecting after a drop, connecting, closed.
  void (async () => {
    for await (const change of client.states()) {
      showState(change.state, change.attempt ? `attempt ${change.attempt}` : '');
      show('connection-error', change.error ? explain(change.error) : '', change.error !== undefined);
    }
  })();

  // Events of every client's echo, this page's included.
  const events = client.subscribe('on_echo_fired', addEvent);
  events.ready.then(
    () => show('events-state', 'subscribed: every echo fires one, whichever client called it'),
    (err) => show('events-state', explain(err), true),
  );

  // Without types in plain JavaScript, the service's methods are called by name.
  const timer = client.service();
  void run('version-result', () => timer.version());

  $('echo-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    void run('echo-result', () => timer.echo({ req: { message: form.get('message'), delayMs: Number(form.get('delayMs')) } }));
  });

  $('schedule-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    void run('schedule-result', () =>
      timer.schedule({
        job: { name: form.get('name'), payload: ['report.csv'], priority: 1 },
        retry: { maxAttempts: 3, backoffMs: 2000, retryOn: ['timeout'] },
        schedule: { startAtMs: Date.now(), intervalMs: Number(form.get('intervalMs')) },
      }),
    );
  });
}

void main();
