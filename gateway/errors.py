"""Errors only the gateway raises (the shared hierarchy is ``schemas.errors``; the status of each family is
decided where errors become HTTP answers)."""

from __future__ import annotations

from schemas.errors import BadInput, ConfigurationError, UpstreamUnreachable


class LogTrustFileInvalid(ConfigurationError):
    """The gateway's record of the log it trusts (``<data_dir>/log-trust.json``) cannot be read or is not the
    configured log's."""

    code = "log-trust-file-invalid"
    title = "Invalid log trust file"


class RequestFramingAmbiguous(BadInput):
    """A request carrying both ``Content-Length`` and ``Transfer-Encoding`` (RFC 9112 §6.3: a request
    smuggling vector between the gateway and the upstream)."""

    code = "request-framing-ambiguous"
    title = "Ambiguous request framing"


class HopByHopFieldSigned(BadInput):
    """The signature covers a field that is removed at this hop: a hop-by-hop field (RFC 9110 §7.6.1), or one
    the ``Connection`` header names, never reaches the upstream, so what the agent signed is not what goes up."""

    code = "hop-by-hop-field-signed"
    title = "A signed field is hop-by-hop"


class MethodOverrideRefused(BadInput):
    """A signed request that asks the upstream to act on another URL (``X-Original-URL``, ``X-Rewrite-URL``),
    or a method override the gateway cannot decide on."""

    code = "method-override-refused"
    title = "Method or URL override refused"


class UpstreamAnswerUnreadable(UpstreamUnreachable):
    """An answer in a content coding the gateway cannot decode, so cannot scrub of the injected credentials."""

    code = "upstream-answer-unreadable"
    title = "The upstream's answer cannot be scrubbed"
