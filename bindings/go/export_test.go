package wirecore

// NewTransportEngineRedirects is NewTransportJSON without redirect.max forced to 0: the
// scenario runner replays the engine's own redirect rules, which http.Client users never meet.
var NewTransportEngineRedirects = newTransport
