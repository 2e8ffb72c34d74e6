/* stmts.c - see stmts.h. */
#include "stmts.h"

#include "json.h"

/* The person columns every identity look-up returns, in enum ident_column
 * order. Closed cards are not cards a patient can use. At most 16 persons:
 * an identity that matches more is bad data, not a patient. */
#define IDENT_SELECT \
    "SELECT p.guid::text, to_char(p.birthday, 'YYYY-MM-DD'), p.family_key, p.name_key," \
    " p.patronymic_key, coalesce(p.snils, '')," \
    " coalesce((SELECT string_agg(c.lpu_guid::text || ':' || c.guid::text, ','" \
    "                             ORDER BY c.created_at, c.guid)" \
    "           FROM medical_cards c WHERE c.person_guid = p.guid AND NOT c.is_closed), '')" \
    " FROM persons p "
#define IDENT_ORDER " ORDER BY p.updated_at DESC, p.guid LIMIT 16"

/* The version of a resource's schedule ($1 LPU, $2 resource): its counter
 * in schedule_versions (005_schedule_version.sql), which triggers bump on
 * every change of its cells or its row, in the writing transaction; 0 when
 * it has never had a cell. Bookings are not in it. NULL unless the LPU and
 * the resource are active and the resource is the LPU's, so that a check of
 * a resource gone since its fill always misses. */
#define SCHEDULE_VERSION \
    "(SELECT coalesce(v.version, 0)::text FROM lpus l" \
    "   JOIN resources r2 ON r2.guid = $2::uuid AND r2.lpu_guid = l.guid AND r2.is_active" \
    "   LEFT JOIN schedule_versions v ON v.resource_guid = r2.guid" \
    " WHERE l.guid = $1::uuid AND l.is_active)"

const struct pg_stmt pg_stmts[STMT__COUNT] = {
    [STMT_PING] = {"ping", "SELECT 1", 0},
    [STMT_CLIENT_APPS] = {"client_apps",
        /* the default first, so that it is never the one left out; one
         * more than a worker keeps, to know when some are */
        "SELECT guid::text, mnem, is_default FROM client_applications"
        " ORDER BY is_default DESC, mnem LIMIT 65", 0},
    [STMT_IDENT_BY_POLIS] = {"ident_by_polis",
        IDENT_SELECT "WHERE p.guid IN (SELECT person_guid FROM medical_cards WHERE polis_key = $1)"
        IDENT_ORDER, 1},
    [STMT_IDENT_BY_SNILS] = {"ident_by_snils", IDENT_SELECT "WHERE p.snils = $1" IDENT_ORDER, 1},
    [STMT_IDENT_BY_PERSON] = {"ident_by_person", IDENT_SELECT "WHERE p.guid = $1::uuid" IDENT_ORDER, 1},
    [STMT_IDENT_BY_MKAB] = {"ident_by_mkab",
        IDENT_SELECT "WHERE p.guid IN (SELECT person_guid FROM medical_cards WHERE guid = $1::uuid)"
        IDENT_ORDER, 1},
    [STMT_IDENT_BY_PASSPORT] = {"ident_by_passport",
        IDENT_SELECT "WHERE p.guid IN (SELECT person_guid FROM medical_cards"
        "                     WHERE doc_series = $1 AND doc_number = $2)" IDENT_ORDER, 2},
    [STMT_MIS_LOGIN] = {"mis_login",
        "SELECT u.password_hash, u.is_disabled,"
        "       coalesce(string_agg(l.mcod, ',' ORDER BY l.mcod), '')"
        "  FROM mis_users u LEFT JOIN mis_user_lpus l ON l.login = u.login"
        " WHERE u.login = $1 GROUP BY u.login", 1},
    [STMT_REFDATA_LPUS] = {"refdata_lpus",
        "SELECT refdata_lpus($1::jsonb, $2::text[])::text", 2},
    [STMT_REFDATA_RESOURCES] = {"refdata_resources",
        "SELECT refdata_resources($1::jsonb, $2::text[])::text", 2},
    [STMT_REFDATA_CELLS] = {"refdata_cells",
        "SELECT refdata_cells($1::jsonb, $2::text[])::text", 2},
    [STMT_REFDATA_REFERRALS] = {"refdata_referrals",
        "SELECT refdata_referrals($1::jsonb, $2::text[])::text", 2},
    [STMT_REFDATA_DISPENSARY] = {"refdata_dispensary",
        "SELECT refdata_dispensary($1::jsonb, $2::text[])::text", 2},
    /* $1 the items, $2 the МКОДs each call's login may write for (a text[]
     * literal, null: any) */
    [STMT_PATIENT_UPLOAD] = {"patient_upload",
        "SELECT a::text FROM mip_patient_upload_many($1::jsonb, $2::jsonb) AS a", 2,
        .batch = true, .json_params = 1u << 0},
    /* The resource's row first (kind 0), then one row per cell of it from
     * $3 to $4, epoch seconds (kind 1), ordered by begin; the resource's
     * columns are not repeated on every cell's row, nor the cell's on the
     * resource's. No row: no such (active) LPU; has_resource false: no such
     * active resource of that LPU. Columns in schedule.c's enum fill_col
     * order. The booking of a cell is a scalar subquery, not EXISTS: the
     * planner would hash EXISTS over every active booking; this is one probe
     * of bookings_one_per_cell per cell. */
    [STMT_SCHEDULE_FILL] = {"schedule_fill",
        "WITH r AS (SELECT r.* FROM lpus l"
        "  LEFT JOIN resources r ON r.guid = $2::uuid AND r.lpu_guid = l.guid AND r.is_active"
        "  WHERE l.guid = $1::uuid AND l.is_active)"
        " SELECT 0, r.guid IS NOT NULL, coalesce(r.res_type, ''), coalesce(r.family, ''),"
        " coalesce(r.name, ''), coalesce(r.patronymic, ''), coalesce(r.role, ''),"
        " coalesce(r.spec_code, ''), coalesce(r.spec_name, ''), coalesce(r.room, ''),"
        " coalesce(r.floor::text, ''), coalesce(r.age_min, -1)::int, coalesce(r.age_max, -1)::int,"
        " coalesce(r.gender, 0)::int, NULL::text, NULL::bigint, NULL::bigint, NULL::text,"
        " NULL::smallint, NULL::text, NULL::text, NULL::boolean, " SCHEDULE_VERSION " FROM r"
        " UNION ALL"
        " (SELECT 1, NULL::boolean, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,"
        " NULL::text, NULL::text, NULL::text, NULL::text, NULL::int, NULL::int, NULL::int,"
        " c.guid::text, extract(epoch FROM c.begin_at)::bigint, extract(epoch FROM c.end_at)::bigint,"
        " c.busy_name, c.busy_type, c.busy_code, array_to_string(c.access, ','),"
        " (SELECT true FROM bookings b WHERE b.cell_guid = c.guid AND b.status <> 'cancelled'"
        "  LIMIT 1) IS NOT NULL, NULL::text"
        " FROM r JOIN cells c ON c.resource_guid = r.guid"
        "  AND c.begin_at >= to_timestamp($3::float8) AND c.begin_at < to_timestamp($4::float8)"
        " ORDER BY c.begin_at LIMIT 5000)"
        " ORDER BY 1, 16", 4},
    /* A cached window still right? Its version, and the begins (epoch
     * seconds) of its booked cells. */
    [STMT_SCHEDULE_CHECK] = {"schedule_check",
        "SELECT " SCHEDULE_VERSION ", coalesce((SELECT string_agg("
        " date_part('epoch', c.begin_at)::bigint::text, ',') FROM cells c"
        " WHERE c.resource_guid = $2::uuid AND c.begin_at >= to_timestamp($3::float8)"
        " AND c.begin_at < to_timestamp($4::float8)"
        " AND (SELECT true FROM bookings b WHERE b.cell_guid = c.guid AND b.status <> 'cancelled'"
        "  LIMIT 1)), '')", 4},
    [STMT_SCHEDULE_PERSON] = {"schedule_person",
        "SELECT to_char(birthday, 'YYYYMMDD'), coalesce(gender, 0) FROM persons WHERE guid = $1::uuid", 1},
    /* The answer without its TicketVisitWithLpu, and that apart, as text
     * the handler sends as it is. */
    [STMT_BOOK] = {"book",
        "SELECT (a - 'visit')::text, (a->'visit')::text FROM mip_book_many($1::jsonb) AS a", 1,
        .batch = true, .json_params = 1u << 0},
    [STMT_CANCEL] = {"cancel", "SELECT mip_cancel($1::jsonb)::text", 1},
    /* $1 person, $2 time zone, $3 how many */
    [STMT_VISITS] = {"visits", "SELECT mip_visits($1::uuid, $2, $3::int)::text", 3},
    /* the eHealth cabinet (007_cabinet.sql) */
    [STMT_CAB_UR_CREATE] = {"cab_ur_create",
        "INSERT INTO cabinet_user_requests (id, tax_id, first_name, last_name, email, client,"
        " expires_at) VALUES ($1::uuid, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::int))"
        " RETURNING extract(epoch FROM expires_at)::bigint::text", 7},
    /* A live UserRequest ($1), and whether its tax id has a user already. */
    [STMT_CAB_UR_GET] = {"cab_ur_get",
        "SELECT ur.tax_id, ur.first_name, ur.last_name, ur.email,"
        " EXISTS (SELECT 1 FROM cabinet_users u WHERE u.tax_id = ur.tax_id)"
        " FROM cabinet_user_requests ur"
        " WHERE ur.id = $1::uuid AND ur.spent_at IS NULL AND ur.expires_at > now()", 1},
    [STMT_CAB_REGISTER] = {"cab_register",
        "SELECT mip_cab_register($1::uuid, $2::jsonb, $3, $4, $5, $6::int)::text", 6},
    /* The janitor: requests a day past their expiry, tokens past theirs,
     * a bounded batch at a time. */
    [STMT_CAB_SWEEP] = {"cab_sweep",
        "WITH ur AS (DELETE FROM cabinet_user_requests WHERE id IN (SELECT id FROM"
        "   cabinet_user_requests WHERE expires_at < now() - interval '1 day' LIMIT 1000)"
        "   RETURNING 1),"
        " tok AS (DELETE FROM cabinet_access_tokens WHERE token_sha256 IN (SELECT token_sha256"
        "   FROM cabinet_access_tokens WHERE expires_at < now() LIMIT 1000) RETURNING 1)"
        " SELECT (SELECT count(*) FROM ur) + (SELECT count(*) FROM tok)", 0},
};

void stmt_batch_values(enum stmt_id stmt, const char *const *const *calls, int n, struct buf *out)
{
    const struct pg_stmt *st = &pg_stmts[stmt];
    for (int i = 0; i < st->nparams; i++) {
        buf_puts(&out[i], "[");
        for (int k = 0; k < n; k++) {
            const char *v = calls[k][i];
            if (k)
                buf_puts(&out[i], ",");
            if (!v)
                buf_puts(&out[i], "null");
            else if (st->json_params & (1u << i))
                buf_puts(&out[i], v);
            else
                json_buf_str(&out[i], v);
        }
        buf_puts(&out[i], "]");
    }
}
