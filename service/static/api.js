// Requests to the service (same origin, relative URLs so a path prefix behind a proxy keeps working). Every
// failure becomes an Error whose message is one sentence for the page: the API's own {"error": ...} sentence
// when it sent one, otherwise what went wrong on the way.

const LABELS = {
  400: "RoboJam refused the request",
  413: "The performance is too large",
  415: "RoboJam refused the request",
  503: "RoboJam is busy right now",
};

const WAIT_MS = 60_000; // a request still unanswered after this is given up, never left waiting silently

async function request(url, init) {
  let response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(WAIT_MS) });
  } catch (error) {
    if (error.name === "TimeoutError") {
      throw new Error(`The RoboJam service did not answer within ${WAIT_MS / 1000} s.`);
    }
    throw new Error(`Cannot reach the RoboJam service at ${window.location.origin}: it is down or the network is off.`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const label = LABELS[response.status] || "The service answered with an error";
    if (data && typeof data.error === "string") {
      throw new Error(`${label} (HTTP ${response.status}): ${data.error}`);
    }
    throw new Error(`${label} (HTTP ${response.status}) without an error message; a proxy in front may be down.`);
  }
  if (data === null) throw new Error(`The service's answer to ${url} is not JSON.`);
  return data;
}

export function getJSON(url) {
  return request(url, { headers: { Accept: "application/json" } });
}

// POST api/predict; resolves to the reply CSV.
export async function predict(body) {
  const data = await request("api/predict", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  if (typeof data.response !== "string") throw new Error("The service's reply has no 'response' CSV.");
  return data.response;
}
