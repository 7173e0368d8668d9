"""THE table of every route and the roles allowed to use it; the middleware enforces it.

A route that is not in this table is not served (``app.py`` refuses to start), and
tests/web/test_permissions.py requests every route as every role and checks the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.accounts import Role, TokenScope

KiB = 1 << 10
# The largest body a route reads: a form of text fields (a document's is a few KB) or an API
# request (a document with its recipients); only the upload routes take a file, streamed to
# disk, up to WebConfig.max_upload plus room for the form around it.
FORM_BODY = 64 * KiB
JSON_BODY = 256 * KiB
UPLOAD_ROOM = 1024 * KiB

PUBLIC: frozenset[Role] = frozenset()  # no sign-in needed
ALL = frozenset(Role)
# Roles that may read record contents (metadata, scans, registers): all but the technician.
READERS = frozenset({Role.CLERK, Role.ARCHIVIST, Role.LEADER, Role.AUDITOR, Role.HANDLER})
LEADER = frozenset({Role.LEADER})
# Who records a văn bản đến's handling: its handlers (any reader may be named one: the library
# checks it is them), or the leader or the clerk on their behalf.
HANDLERS = frozenset({Role.CLERK, Role.ARCHIVIST, Role.LEADER, Role.HANDLER})
CLERK = frozenset({Role.CLERK})
FILERS = frozenset({Role.CLERK, Role.ARCHIVIST})  # open, close and fill hồ sơ
# Who sets up the year's Danh mục hồ sơ (its heading structure): those who keep hồ sơ, and the
# head who approves it.
PLANNERS = frozenset({Role.CLERK, Role.ARCHIVIST, Role.LEADER})
USER_ADMINS = frozenset({Role.LEADER})  # granting access to records is the head's decision
USER_VIEWERS = frozenset({Role.LEADER, Role.TECHNICIAN, Role.AUDITOR})
# Văn bản đi (appliance/outgoing): a clerk or a handler drafts; a reviewer or the leader
# approves or returns (never the clerk); the leader signs (the clerk may upload a PDF the
# leader signed elsewhere: it is checked to be theirs); only the clerk issues and sends.
DRAFTERS = frozenset({Role.CLERK, Role.HANDLER})
APPROVERS = frozenset({Role.LEADER, Role.HANDLER, Role.ARCHIVIST})
SIGNERS = frozenset({Role.LEADER, Role.CLERK})
SIGNER_ADMINS = frozenset({Role.LEADER, Role.CLERK, Role.TECHNICIAN})
# Use of the archive: the desk (văn thư, lưu trữ) records outside readers' requests and hands
# over what was approved; the head of the agency approves and keeps the register of use, or
# the roles the office names in appliance.json ("use": {"approver_roles": […]}): routes marked
# ``configurable`` take the office's approvers instead of their default roles.
USE_DESK = FILERS
PUBLISHERS = frozenset({Role.LEADER})  # opening a hồ sơ to the public is the head's decision
USE_APPROVERS = frozenset({Role.LEADER})  # the default when appliance.json names none
MAY_APPROVE = frozenset({Role.LEADER, Role.ARCHIVIST, Role.CLERK, Role.AUDITOR})


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    roles: frozenset[Role]
    upload: bool = False  # takes a file: see max_body
    configurable: bool = False  # the roles are the office's approvers (USE_APPROVERS)

    def max_body(self, max_upload: int) -> int:
        """The most bytes of request body this route reads (larger ones are answered 413)."""
        if self.upload:
            return max_upload + UPLOAD_ROOM
        return JSON_BODY if self.api else FORM_BODY

    @property
    def public(self) -> bool:
        return not self.roles

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")


ROUTES: tuple[Route, ...] = (
    # -- pages ---------------------------------------------------------------------------
    Route("healthz", "GET", "/healthz", PUBLIC),
    Route("static", "GET", "/static/{name}", PUBLIC),
    Route("signin_form", "GET", "/signin", PUBLIC),
    Route("signin", "POST", "/signin", PUBLIC),
    Route("lang", "POST", "/lang", PUBLIC),
    Route("signout", "POST", "/signout", ALL),
    Route("home", "GET", "/", ALL),
    Route("incoming_form", "GET", "/documents/incoming/new", CLERK),
    Route("incoming_create", "POST", "/documents/incoming", CLERK, upload=True),
    Route("outgoing_form", "GET", "/documents/outgoing/new", DRAFTERS),
    Route("outgoing_create", "POST", "/documents/outgoing", DRAFTERS, upload=True),
    Route("document_version", "POST", "/documents/{id}/versions", DRAFTERS, upload=True),
    Route("document_version_file", "GET", "/documents/{id}/versions/{n}", READERS),
    Route("document_submit", "POST", "/documents/{id}/submit", DRAFTERS),
    Route("document_approve", "POST", "/documents/{id}/approve", APPROVERS),
    Route("document_return", "POST", "/documents/{id}/return", APPROVERS),
    Route("document_sign", "POST", "/documents/{id}/sign", SIGNERS, upload=True),
    Route("document_delivery", "POST", "/documents/{id}/deliveries/{n}", CLERK),
    Route("signers", "GET", "/signers", SIGNER_ADMINS),
    Route("seal_update", "POST", "/agency-seal", SIGNER_ADMINS, upload=True),
    Route("signer_update", "POST", "/signers/{username}", SIGNER_ADMINS, upload=True),
    Route("document", "GET", "/documents/{id}", READERS),
    Route("document_issue", "POST", "/documents/{id}/issue", CLERK),
    Route("document_upload", "POST", "/documents/{id}/content", CLERK, upload=True),
    Route("document_file", "POST", "/documents/{id}/file", FILERS),
    Route("document_unfile", "POST", "/documents/{id}/file/remove", FILERS),
    Route("document_capture", "GET", "/documents/{id}/capture", READERS),
    Route("content", "GET", "/documents/{id}/content/{sha256}", READERS),
    Route("document_edit", "GET", "/documents/{id}/edit", CLERK),
    Route("document_update", "POST", "/documents/{id}/edit", CLERK),
    Route("document_cancel", "POST", "/documents/{id}/cancel", CLERK),
    Route("document_content_remove", "POST", "/documents/{id}/content/{sha256}/remove",
          CLERK),
    Route("document_direct", "POST", "/documents/{id}/direction", LEADER),
    Route("document_progress", "POST", "/documents/{id}/progress", HANDLERS),
    Route("document_slip", "GET", "/documents/{id}/phieu-giai-quyet.pdf", READERS),
    Route("inbox", "GET", "/inbox", LEADER),
    Route("tasks", "GET", "/tasks", HANDLERS),
    Route("search", "GET", "/search", READERS),
    Route("files", "GET", "/files", READERS),
    Route("file_form", "GET", "/files/new", FILERS),
    Route("file_create", "POST", "/files", FILERS),
    Route("file", "GET", "/files/{code}", READERS),
    Route("file_close", "POST", "/files/{code}/close", FILERS),
    Route("file_publish", "POST", "/files/{code}/publish", PUBLISHERS),
    Route("file_unpublish", "POST", "/files/{code}/unpublish", PUBLISHERS),
    Route("registers", "GET", "/registers", READERS),
    Route("use_list", "GET", "/use", READERS),
    Route("use_form", "GET", "/use/new", READERS),
    Route("use_create", "POST", "/use", READERS),
    Route("use_request", "GET", "/use/{id}", READERS),
    Route("use_approve", "POST", "/use/{id}/approve", USE_APPROVERS, configurable=True),
    Route("use_refuse", "POST", "/use/{id}/refuse", USE_APPROVERS, configurable=True),
    Route("use_deliver", "POST", "/use/{id}/deliver", READERS),
    Route("use_read", "GET", "/use/{id}/read/{item}", READERS),
    Route("use_read_page", "GET", "/use/{id}/read/{item}/page-{page}.png", READERS),
    # Before the registers of documents, whose {kind} would take "use".
    Route("use_register", "GET", "/registers/use/{year}", USE_APPROVERS, configurable=True),
    Route("use_register_print", "GET", "/registers/use/{year}/print.{fmt}", USE_APPROVERS,
          configurable=True),
    Route("register", "GET", "/registers/{kind}/{year}", READERS),
    Route("register_print", "GET", "/registers/{kind}/{year}/print.{fmt}", READERS),
    Route("inbox_electronic", "GET", "/inbox/electronic", READERS),
    Route("inbox_electronic_item", "GET", "/inbox/electronic/{id}", READERS),
    Route("inbox_electronic_register", "POST", "/inbox/electronic/{id}/register", CLERK),
    Route("inbox_electronic_return", "POST", "/inbox/electronic/{id}/return", CLERK),
    Route("inbox_electronic_file", "GET", "/inbox/electronic/{id}/files/{sha256}", READERS),
    Route("users", "GET", "/users", USER_VIEWERS),
    Route("user_create", "POST", "/users", USER_ADMINS),
    Route("user_update", "POST", "/users/{username}", USER_ADMINS),
    Route("account", "GET", "/account", ALL),
    Route("account_password", "POST", "/account/password", ALL),
    Route("token_create", "POST", "/account/tokens", ALL),
    Route("token_revoke", "POST", "/account/tokens/{token_id}/revoke", ALL),
    Route("device", "GET", "/device", ALL),
    # Registers kept beside the documents, and the Danh mục hồ sơ (branch registers).
    Route("document_postal", "POST", "/documents/{id}/postal", CLERK),
    Route("document_copy_use", "POST", "/documents/{id}/copy-uses", CLERK),
    Route("document_copy_return", "POST", "/documents/{id}/copy-uses/{use_id}/return", CLERK),
    Route("fileplan_headings_form", "GET", "/files/plan/{year}/headings", PLANNERS),
    Route("fileplan_headings", "POST", "/files/plan/{year}/headings", PLANNERS),
    Route("fileplan_approve", "POST", "/files/plan/{year}/approve", LEADER),
    Route("fileplan_print", "GET", "/files/plan/{year}/print.pdf", READERS),
    # -- JSON API ------------------------------------------------------------------------
    Route("api_openapi", "GET", "/api/v1/openapi.json", PUBLIC),
    Route("api_me", "GET", "/api/v1/me", ALL),
    Route("api_status", "GET", "/api/v1/status", ALL),
    Route("api_device", "GET", "/api/v1/device", ALL),
    Route("api_search", "GET", "/api/v1/documents", READERS),
    Route("api_incoming", "POST", "/api/v1/documents/incoming", CLERK),
    Route("api_outgoing", "POST", "/api/v1/documents/outgoing", DRAFTERS, upload=True),
    Route("api_version", "POST", "/api/v1/documents/{id}/versions", DRAFTERS, upload=True),
    Route("api_submit", "POST", "/api/v1/documents/{id}/submit", DRAFTERS),
    Route("api_approve", "POST", "/api/v1/documents/{id}/approve", APPROVERS),
    Route("api_return", "POST", "/api/v1/documents/{id}/return", APPROVERS),
    Route("api_sign", "POST", "/api/v1/documents/{id}/sign", SIGNERS, upload=True),
    Route("api_deliveries", "GET", "/api/v1/documents/{id}/deliveries", READERS),
    Route("api_delivery", "POST", "/api/v1/documents/{id}/deliveries/{n}", CLERK),
    Route("api_signers", "GET", "/api/v1/signers", SIGNER_ADMINS),
    Route("api_document", "GET", "/api/v1/documents/{id}", READERS),
    Route("api_issue", "POST", "/api/v1/documents/{id}/issue", CLERK),
    Route("api_history", "GET", "/api/v1/documents/{id}/history", READERS),
    Route("api_upload", "POST", "/api/v1/documents/{id}/content", CLERK, upload=True),
    Route("api_content", "GET", "/api/v1/documents/{id}/content/{sha256}", READERS),
    Route("api_document_update", "PATCH", "/api/v1/documents/{id}", CLERK),
    Route("api_cancel", "POST", "/api/v1/documents/{id}/cancel", CLERK),
    Route("api_content_remove", "DELETE", "/api/v1/documents/{id}/content/{sha256}", CLERK),
    Route("api_direction", "POST", "/api/v1/documents/{id}/direction", LEADER),
    Route("api_progress", "POST", "/api/v1/documents/{id}/progress", HANDLERS),
    Route("api_tasks", "GET", "/api/v1/tasks", HANDLERS),
    Route("api_add_to_file", "POST", "/api/v1/documents/{id}/file", FILERS),
    Route("api_remove_from_file", "DELETE", "/api/v1/documents/{id}/file/{code}", FILERS),
    Route("api_files", "GET", "/api/v1/files", READERS),
    Route("api_file_create", "POST", "/api/v1/files", FILERS),
    Route("api_retention", "GET", "/api/v1/retention", READERS),
    Route("api_file", "GET", "/api/v1/files/{code}", READERS),
    Route("api_file_close", "POST", "/api/v1/files/{code}/close", FILERS),
    Route("api_use_list", "GET", "/api/v1/use-requests", READERS),
    Route("api_use_create", "POST", "/api/v1/use-requests", READERS),
    Route("api_use_request", "GET", "/api/v1/use-requests/{id}", READERS),
    Route("api_use_approve", "POST", "/api/v1/use-requests/{id}/approve", USE_APPROVERS,
          configurable=True),
    Route("api_use_refuse", "POST", "/api/v1/use-requests/{id}/refuse", USE_APPROVERS,
          configurable=True),
    Route("api_use_deliver", "POST", "/api/v1/use-requests/{id}/deliver", READERS),
    Route("api_use_register", "GET", "/api/v1/registers/use/{year}", USE_APPROVERS,
          configurable=True),
    Route("api_register", "GET", "/api/v1/registers/{kind}/{year}", READERS),
    Route("api_postal", "POST", "/api/v1/documents/{id}/postal", CLERK),
    Route("api_postal_list", "GET", "/api/v1/documents/{id}/postal", READERS),
    Route("api_copy_use", "POST", "/api/v1/documents/{id}/copy-uses", CLERK),
    Route("api_copy_uses", "GET", "/api/v1/documents/{id}/copy-uses", READERS),
    Route("api_copy_return", "POST", "/api/v1/documents/{id}/copy-uses/{use_id}/return",
          CLERK),
    Route("api_fileplan", "GET", "/api/v1/fileplan/{year}", READERS),
    Route("api_fileplan_headings", "POST", "/api/v1/fileplan/{year}/headings", PLANNERS),
    Route("api_fileplan_approve", "POST", "/api/v1/fileplan/{year}/approve", LEADER),
    Route("api_users", "GET", "/api/v1/users", USER_VIEWERS),
    Route("api_inbox_electronic", "GET", "/api/v1/inbox/electronic", READERS),
    Route("api_inbox_electronic_register", "POST", "/api/v1/inbox/electronic/{id}/register",
          CLERK),
    Route("api_inbox_electronic_return", "POST", "/api/v1/inbox/electronic/{id}/return", CLERK),
    Route("api_user_create", "POST", "/api/v1/users", USER_ADMINS),
)

BY_NAME = {r.name: r for r in ROUTES}


def allowed(route_name: str, role: Role | None,
            approvers: frozenset[Role] = USE_APPROVERS) -> bool:
    """Whether ``role`` (None: not signed in) may use the route; ``approvers`` are the roles
    the office named to approve use requests (appliance.json), for ``configurable`` routes."""
    route = BY_NAME.get(route_name)
    if route is None:
        return False
    if route.public:
        return True
    roles = approvers if route.configurable else route.roles
    return role is not None and role in roles


def approver_roles(names: tuple[str, ...]) -> frozenset[Role]:
    """The office's approvers from appliance.json: roles that may read records, else refused."""
    from appliance.errors import ConfigError

    out = set()
    for n in names:
        try:
            role = Role(n)
        except ValueError:
            raise ConfigError(f"use.approver_roles: {n!r} is not a role") from None
        if role not in MAY_APPROVE:
            raise ConfigError(f"use.approver_roles: {n!r} cannot read records")
        out.add(role)
    return frozenset(out) or USE_APPROVERS


# Routes an API token may never call: a leaked token must not mint itself a successor that
# outlives its expiry (or widen its own scope).
SESSION_ONLY = frozenset({"token_create"})
READ_METHODS = frozenset({"GET", "HEAD"})


def token_refusal(route_name: str, method: str, scope: TokenScope) -> str | None:
    """Why a request authenticated by a token of ``scope`` may not use the route, or None."""
    if route_name in SESSION_ONLY:
        return ("Khóa API không được tạo khóa API; hãy đăng nhập để tạo "
                "(an API token may not create tokens; sign in to make one).")
    if scope is TokenScope.READ and method not in READ_METHODS:
        return "Khóa API này chỉ đọc (this API token is read-only)."
    return None
