/* check_errors.c - unit tests of the error catalogue (src/errors.c).
 * The seeds' tables are copied here letter for letter, so that a catalogue
 * entry that drifts from its seed fails by name. Then: the entries agree
 * with themselves (status, code, type), placeholders, the standard body, and
 * docs/errors.md against err_write_markdown. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "errors.h"
#include "ids.h"
#include "util.h"

/* ---- the seeds' tables ---- */

struct seed_row {
    const char *seed;
    int status;
    const char *code;
    const char *type;    /* NULL where the seed's table has no type column */
    const char *text;    /* as the seed writes it */
};

static const struct seed_row seed_rows[] = {
    {"000", 403, "5096", "Error", "Клиентское приложение с данным идентификатором не найдено"},
    {"000", 404, "4001", "Error",
      "По вашему полису и дате рождения не найдено ни одной медицинской "
      "карты."},
    {"000", 500, "5097", "Error", "Не удалось получить данные о медицинских картах пациента."},
    {"001", 403, "5010", NULL, "Запрос должен содержать 'Authorization: Bearer ...'\""},
    {"001", 403, "5008", NULL, "Токен некорректен"},
    {"001", 403, "5007", NULL, "Время действия токена истекло"},
    {"001", 403, "5009", NULL, "Подпись запроса некорректна"},
    {"001", 400, "4000", NULL, "Не найден МКАБ: {guid} в лпу: {lpu}"},
    {"001", 400, "4033", NULL, "directionID и directionType не могут быть указаны отдельно"},
    {"001", 400, "4031", NULL,
      "Направление с таким номером не существует, либо принадлежит другому "
      "пациенту"},
    {"001", 400, "4036", NULL, "Время и гвид врача или гвид ячейки расписания не должны быть пустыми"},
    {"001", 400, "4005", NULL,
      "Вы пытаетесь записаться в детское учреждение. Запись пациентов старше "
      "18 лет запрещена."},
    {"001", 400, "4007", NULL,
      "Вам запрещена самостоятельная запись на прием через интернет или "
      "инфомат. Для записи на прием обратитесь в регистратуру медицинского "
      "учреждения лично или по телефону."},
    {"001", 400, "4007", NULL,
      "Вы не состоите на диспансерном учете у данного специалиста. Запись "
      "невозможна."},
    {"001", 400, "4008", NULL,
      "Вы уже записаны {ФИО} на {Время}. Запрещено иметь более одной активной "
      "записи на прием на одну специальность."},
    {"001", 400, "4029", NULL,
      "Запись недоступна для данной возрастной группы. Сотрудниками МО было "
      "установлено ограничение по возрасту при записи на прием."},
    {"001", 400, "4009", NULL, "Это время уже занято. Выберите другое свободное время приема."},
    {"001", 400, "5066", NULL, "Недопустимый период расписания. Максимальный период N дней"},
    {"002", 403, "5010", "Error", "Запрос должен содержать 'Authorization: Bearer ...'\""},
    {"002", 403, "5008", "Error", "Токен некорректен"},
    {"002", 403, "5007", "Error", "Время действия токена истекло"},
    {"002", 403, "5009", "Error", "Подпись запроса некорректна"},
    {"002", 404, "4001", "Error",
      "Ваша электронная медицинская карта отсутствует. Обратитесь в "
      "регистратуру медицинского учреждения."},
    {"002", 403, "5096", "Error",
      "Ваша электронная медицинская карта закрыта. Обратитесь в регистратуру "
      "медицинского учреждения."},
    {"002", 500, "5097", "Error", "Не удалось получить данные о медицинских картах пациента."},
    {"002", 400, "4031", "Error",
      "Направление с таким номером не существует, либо принадлежит другому "
      "пациенту"},
    {"002", 400, "4007", "Validation",
      "Вам запрещена самостоятельная запись на прием через интернет или "
      "инфомат. Для записи на прием обратитесь в регистратуру медицинского "
      "учреждения лично или по телефону."},
    {"002", 400, "4008", "Validation",
      "Вы уже записаны {ФИО} на {Время}. Запрещено иметь более одной активной "
      "записи на прием на одну специальность."},
    {"002", 400, "4029", "Validation",
      "Запись недоступна для данной возрастной группы. Сотрудниками МО было "
      "установлено ограничение по возрасту при записи на прием."},
    {"002", 400, "4009", "Validation", "Это время уже занято. Выберите другое свободное время приема."},
};
#define N_SEED_ROWS ((int)(sizeof(seed_rows) / sizeof(seed_rows[0])))

/* Seed 001 writes 5066's period as a bare N; the catalogue has {N}. */
static const char seed_5066_filled[] = "Недопустимый период расписания. Максимальный период 14 дней";

static struct buf fill(enum err_id id, const char *const *args, int nargs)
{
    struct buf b;
    buf_init(&b);
    err_message(id, args, nargs, &b);
    return b;
}

/* Does catalogue entry i say what the seed row says? */
static bool entry_matches_row(int i, const struct seed_row *r)
{
    const struct err_def *d = err_get((enum err_id)i);
    if (strcmp(d->code, r->code) != 0)
        return false;
    if (strcmp(r->code, "5066") == 0) {
        static const char *const n[] = {"14"};
        struct buf b = fill((enum err_id)i, n, 1);
        bool same = strcmp(b.data, seed_5066_filled) == 0;
        buf_free(&b);
        return same;
    }
    return strcmp(d->message, r->text) == 0;
}

static bool code_in_seeds(const char *code)
{
    for (int k = 0; k < N_SEED_ROWS; k++)
        if (strcmp(seed_rows[k].code, code) == 0)
            return true;
    return false;
}

/* How many different messages the seeds give for code. */
static int seed_messages(const char *code)
{
    int n = 0;
    for (int k = 0; k < N_SEED_ROWS; k++) {
        if (strcmp(seed_rows[k].code, code) != 0)
            continue;
        bool seen = false;
        for (int j = 0; j < k; j++)
            seen |= strcmp(seed_rows[j].code, code) == 0 && strcmp(seed_rows[j].text, seed_rows[k].text) == 0;
        n += !seen;
    }
    return n;
}

/* One loop iteration per row of the seeds' tables. */
/* The bodies made once are the bodies err_body makes, entry by entry; an
 * id out of range is the internal error's, as with err_get. */
START_TEST(plain_bodies_agree)
{
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < E__COUNT; i++) {
        err_body((enum err_id)i, NULL, 0, &b);
        size_t len;
        const char *p = err_plain_body((enum err_id)i, &len);
        ck_assert_uint_eq(len, b.len);
        ck_assert_mem_eq(p, b.data, len);
    }
    size_t len;
    err_body(E_INTERNAL, NULL, 0, &b);
    ck_assert_mem_eq(err_plain_body((enum err_id)(E__COUNT + 3), &len), b.data, b.len);
    buf_free(&b);
}
END_TEST

START_TEST(seed_pair_in_catalogue)
{
    const struct seed_row *r = &seed_rows[_i];
    int found = -1;

    for (int i = 1; i < E__COUNT && found < 0; i++)
        if (entry_matches_row(i, r))
            found = i;
    ck_assert_msg(found >= 0, "seed %s: %d/%s \"%s\" is not in the catalogue letter for letter",
                  r->seed, r->status, r->code, r->text);
    const struct err_def *d = err_get((enum err_id)found);
    ck_assert_msg(d->http_status == r->status, "seed %s: %s answers %d in the catalogue, %d in the seed",
                  r->seed, r->code, d->http_status, r->status);
    if (r->type)
        ck_assert_msg(strcmp(err_type_name(d->type), r->type) == 0,
                      "seed %s: %d/%s \"%s\" is %s in the catalogue, %s in the seed", r->seed, r->status,
                      r->code, r->text, err_type_name(d->type), r->type);
}
END_TEST

/* A code the seeds use never carries a message the seeds do not give. */
START_TEST(seed_codes_carry_seed_messages)
{
    for (int i = 1; i < E__COUNT; i++) {
        const struct err_def *d = err_get((enum err_id)i);
        if (!code_in_seeds(d->code))
            continue;
        bool ok = false;
        for (int k = 0; k < N_SEED_ROWS && !ok; k++)
            ok = entry_matches_row(i, &seed_rows[k]);
        ck_assert_msg(ok, "catalogue %d/%s \"%s\": the seeds give this code, not this message",
                      d->http_status, d->code, d->message);
    }
}
END_TEST

START_TEST(schedule_period_placeholder)
{
    const struct err_def *d = err_get(E_SCHEDULE_PERIOD);
    static const char *const n[] = {"14"};

    ck_assert_int_eq(d->http_status, 400);
    ck_assert_str_eq(d->code, "5066");
    ck_assert_str_eq(d->message, "Недопустимый период расписания. Максимальный период {N} дней");
    struct buf b = fill(E_SCHEDULE_PERIOD, n, 1);
    ck_assert_str_eq(b.data, "Недопустимый период расписания. Максимальный период 14 дней");
    buf_free(&b);
}
END_TEST

START_TEST(token_missing_keeps_stray_quote)
{
    const struct err_def *d = err_get(E_TOKEN_MISSING);
    size_t n = strlen(d->message);

    ck_assert_str_eq(d->message, "Запрос должен содержать 'Authorization: Bearer ...'\"");
    ck_assert(n >= 2 && d->message[n - 2] == '\'' && d->message[n - 1] == '"');
}
END_TEST

/* ---- the catalogue agrees with itself ---- */

static int code_number(const char *code)
{
    if (strlen(code) != 4)
        return -1;
    for (int k = 0; k < 4; k++)
        if (code[k] < '0' || code[k] > '9')
            return -1;
    return atoi(code);
}

/* One loop iteration per entry but E_NONE. */
START_TEST(entry_consistent)
{
    const struct err_def *d = err_get((enum err_id)_i);
    int code = code_number(d->code);
    int st = d->http_status;

    ck_assert_msg(d->id == (enum err_id)_i, "entry %d holds id %d: a row is missing or misplaced", _i, (int)d->id);
    ck_assert_msg(code >= 1000, "entry %d: Message_code \"%s\" is not four digits", _i, d->code);
    ck_assert_msg(d->type == ERR_TYPE_ERROR || d->type == ERR_TYPE_VALIDATION, "entry %s: bad type", d->code);
    ck_assert_msg(d->message && d->message[0], "entry %s: empty message", d->code);
    ck_assert_msg(ids_utf8_valid(d->message, strlen(d->message)), "entry %s: message is not UTF-8", d->code);

    switch (code / 1000) {
    case 2: /* notices answer 200 */
        ck_assert_msg(st == 200, "%s is a notice but answers %d", d->code, st);
        break;
    case 4: /* client and validation errors */
        ck_assert_msg(st >= 400 && st <= 499, "%s is a 4xxx code but answers %d", d->code, st);
        break;
    case 5: /* authorization and server errors; seed 001 gives 5066 a 400 */
        if (strcmp(d->code, "5066") == 0)
            ck_assert_msg(st == 400, "5066 answers 400 in seed 001, not %d", st);
        else
            ck_assert_msg(st == 403 || (st >= 500 && st <= 599), "%s is a 5xxx code but answers %d", d->code, st);
        break;
    default:
        ck_abort_msg("%s: a code must start with 2, 4 or 5", d->code);
    }
    if (st >= 500)
        ck_assert_msg(code / 1000 == 5, "%s answers %d: a server error takes a 5xxx code", d->code, st);
    if (st >= 500 || st == 403)
        ck_assert_msg(d->type == ERR_TYPE_ERROR, "%s answers %d but is a Validation", d->code, st);
    if (d->type == ERR_TYPE_VALIDATION)
        ck_assert_msg(st >= 400 && st <= 499, "%s is a Validation but answers %d", d->code, st);

    /* The project's own codes stay in their ranges and out of the seeds'. */
    if (!code_in_seeds(d->code) && code != 2000) {
        bool own = (code >= 4100 && code <= 4199) || code == 4290 || code == 5000 ||
                   (code >= 5030 && code <= 5033);
        ck_assert_msg(own, "%s is neither a seed's code nor in the project's own ranges", d->code);
    }
    if (code >= 4100 && code <= 4199)
        ck_assert_msg(st >= 400 && st <= 499, "%s is a malformed request but answers %d", d->code, st);
    if (code >= 5030 && code <= 5032)
        ck_assert_msg(st == 503, "%s is service unavailable but answers %d", d->code, st);

    /* Placeholders: {name}, not nested, closed. */
    for (const char *p = d->message; (p = strchr(p, '{')) != NULL;) {
        const char *close = strchr(p, '}');
        ck_assert_msg(close && close > p + 1, "%s: unclosed or empty placeholder", d->code);
        ck_assert_msg(memchr(p + 1, '{', (size_t)(close - p - 1)) == NULL, "%s: nested placeholder", d->code);
        p = close + 1;
    }
}
END_TEST

START_TEST(codes_unique)
{
    for (int i = 1; i < E__COUNT; i++) {
        const struct err_def *a = err_get((enum err_id)i);
        int same = 0;
        for (int j = 1; j < E__COUNT; j++) {
            const struct err_def *b = err_get((enum err_id)j);
            if (strcmp(a->code, b->code) != 0)
                continue;
            same++;
            if (j != i) {
                ck_assert_msg(strcmp(a->message, b->message) != 0, "%s: the same message twice", a->code);
                ck_assert_msg(a->http_status == b->http_status, "%s: two statuses", a->code);
            }
        }
        /* Only where the seeds give one code several messages (4007). */
        int allowed = code_in_seeds(a->code) ? seed_messages(a->code) : 1;
        ck_assert_msg(same <= allowed, "code %s is used %d times; the seeds give it %d message(s)", a->code,
                      same, allowed);
    }
    ck_assert_int_eq(seed_messages("4007"), 2);
}
END_TEST

START_TEST(none_and_notice)
{
    const struct err_def *d = err_get(E_NONE);

    ck_assert_int_eq(d->id, E_NONE);
    ck_assert_int_eq(d->http_status, 200);
    ck_assert_str_eq(d->message, "");
    d = err_get(E_VISIT_CANCELLED);
    ck_assert_int_eq(d->http_status, 200);
    ck_assert_str_eq(d->code, "2000");
    ck_assert_str_eq(d->message, "Вызов отменен");
    ck_assert_str_eq(err_type_name(ERR_TYPE_ERROR), "Error");
    ck_assert_str_eq(err_type_name(ERR_TYPE_VALIDATION), "Validation");
}
END_TEST

START_TEST(out_of_range_is_internal)
{
    const struct err_def *internal = err_get(E_INTERNAL);
    struct buf a, b;

    ck_assert_int_eq(internal->http_status, 500);
    ck_assert_str_eq(internal->code, "5000");
    ck_assert_ptr_eq(err_get(E__COUNT), internal);
    ck_assert_ptr_eq(err_get((enum err_id)(E__COUNT + 1)), internal);
    ck_assert_ptr_eq(err_get((enum err_id)1000000), internal);
    ck_assert_ptr_eq(err_get((enum err_id)-1), internal);

    buf_init(&a);
    buf_init(&b);
    err_body((enum err_id)(E__COUNT + 7), NULL, 0, &a);
    err_body(E_INTERNAL, NULL, 0, &b);
    ck_assert_str_eq(a.data, b.data);
    ck_assert_str_eq(a.data, "{\"Code\":500,\"Message_code\":\"5000\",\"Message\":\"Внутренняя ошибка сервера\"}");
    err_message((enum err_id)-5, NULL, 0, &a);
    ck_assert_str_eq(a.data, "Внутренняя ошибка сервера");
    buf_free(&a);
    buf_free(&b);
}
END_TEST

/* ---- placeholders ---- */

START_TEST(fill_in_order)
{
    static const char *const two[] = {"6a8bd24a", "c3c977af"};
    static const char *const pair[] = {"directionID", "directionType"};
    struct buf b = fill(E_NO_MKAB_IN_LPU, two, 2);

    ck_assert_str_eq(b.data, "Не найден МКАБ: 6a8bd24a в лпу: c3c977af");
    err_message(E_PARAM_PAIR, pair, 2, &b); /* the same name twice, filled in order */
    ck_assert_str_eq(b.data, "Параметры directionID и directionType указываются только вместе");
    static const char *const person[] = {"Иванов И. И.", "09:00 08.12.2022"};
    err_message(E_ONE_PER_SPECIALITY, person, 2, &b);
    ck_assert_str_eq(b.data, "Вы уже записаны Иванов И. И. на 09:00 08.12.2022. Запрещено иметь более одной "
                             "активной записи на прием на одну специальность.");
    buf_free(&b);
}
END_TEST

START_TEST(fill_missing_args_empty)
{
    static const char *const one[] = {"6a8bd24a"};
    static const char *const with_null[] = {NULL, "c3c977af"};
    struct buf b = fill(E_NO_MKAB_IN_LPU, one, 1);

    ck_assert_str_eq(b.data, "Не найден МКАБ: 6a8bd24a в лпу: ");
    err_message(E_NO_MKAB_IN_LPU, NULL, 0, &b);
    ck_assert_str_eq(b.data, "Не найден МКАБ:  в лпу: ");
    err_message(E_NO_MKAB_IN_LPU, with_null, 2, &b);
    ck_assert_str_eq(b.data, "Не найден МКАБ:  в лпу: c3c977af");
    err_message(E_PARAM_REQUIRED, NULL, 0, &b);
    ck_assert_str_eq(b.data, "Не указан обязательный параметр ");
    buf_free(&b);
}
END_TEST

START_TEST(fill_extra_args_ignored)
{
    static const char *const three[] = {"g", "l", "extra"};
    static const char *const any[] = {"x", "y"};
    struct buf b = fill(E_NO_MKAB_IN_LPU, three, 3);

    ck_assert_str_eq(b.data, "Не найден МКАБ: g в лпу: l");
    err_message(E_CELL_TAKEN, any, 2, &b);
    ck_assert_str_eq(b.data, err_get(E_CELL_TAKEN)->message);
    err_message(E_TOKEN_MISSING, any, 2, &b);
    ck_assert_str_eq(b.data, err_get(E_TOKEN_MISSING)->message);
    buf_free(&b);
}
END_TEST

START_TEST(fill_no_placeholders_unchanged)
{
    struct buf b;

    buf_init(&b);
    for (int i = 1; i < E__COUNT; i++) {
        const char *m = err_get((enum err_id)i)->message;
        if (strchr(m, '{'))
            continue;
        buf_puts(&b, "left over");
        err_message((enum err_id)i, NULL, 0, &b);
        ck_assert_str_eq(b.data, m);
        ck_assert_uint_eq(b.len, strlen(m));
    }
    err_message(E_NONE, NULL, 0, &b);
    ck_assert_ptr_nonnull(b.data);
    ck_assert_str_eq(b.data, "");
    buf_free(&b);
}
END_TEST

/* An argument is text: braces in it are not placeholders. */
START_TEST(fill_args_not_expanded)
{
    static const char *const args[] = {"{field}", "b"};
    struct buf b = fill(E_PARAM_PAIR, args, 2);

    ck_assert_str_eq(b.data, "Параметры {field} и b указываются только вместе");
    buf_free(&b);
}
END_TEST

/* ---- the standard body ---- */

/* Parses body and checks it is exactly {"Code","Message_code","Message"}. */
static void check_body(const char *body, int status, const char *code, const char *message)
{
    char err[256] = "";
    yajl_val v = yajl_tree_parse(body, err, sizeof(err));

    ck_assert_msg(v != NULL, "body does not parse (%s): %s", err, body);
    ck_assert(YAJL_IS_OBJECT(v));
    ck_assert_uint_eq(v->u.object.len, 3);
    ck_assert_str_eq(v->u.object.keys[0], "Code");
    ck_assert_str_eq(v->u.object.keys[1], "Message_code");
    ck_assert_str_eq(v->u.object.keys[2], "Message");
    ck_assert(YAJL_IS_INTEGER(v->u.object.values[0]));
    ck_assert_int_eq(YAJL_GET_INTEGER(v->u.object.values[0]), status);
    ck_assert(YAJL_IS_STRING(v->u.object.values[1]));
    ck_assert_str_eq(YAJL_GET_STRING(v->u.object.values[1]), code);
    ck_assert(YAJL_IS_STRING(v->u.object.values[2]));
    ck_assert_str_eq(YAJL_GET_STRING(v->u.object.values[2]), message);
    yajl_tree_free(v);
}

START_TEST(body_exact)
{
    struct buf b;

    buf_init(&b);
    buf_puts(&b, "left over");
    err_body(E_CELL_TAKEN, NULL, 0, &b);
    ck_assert_str_eq(b.data, "{\"Code\":400,\"Message_code\":\"4009\","
                             "\"Message\":\"Это время уже занято. Выберите другое свободное время приема.\"}");
    ck_assert_uint_eq(b.len, strlen(b.data));
    err_body(E_TOKEN_MISSING, NULL, 0, &b);
    ck_assert_str_eq(b.data, "{\"Code\":403,\"Message_code\":\"5010\","
                             "\"Message\":\"Запрос должен содержать 'Authorization: Bearer ...'\\\"\"}");
    check_body(b.data, 403, "5010", "Запрос должен содержать 'Authorization: Bearer ...'\"");
    static const char *const lpu[] = {"g", "l"};
    err_body(E_NO_MKAB_IN_LPU, lpu, 2, &b);
    ck_assert_str_eq(b.data, "{\"Code\":400,\"Message_code\":\"4000\",\"Message\":\"Не найден МКАБ: g в лпу: l\"}");
    buf_free(&b);
}
END_TEST

START_TEST(body_every_entry)
{
    struct buf b, m;

    buf_init(&b);
    buf_init(&m);
    for (int i = 1; i < E__COUNT; i++) {
        const struct err_def *d = err_get((enum err_id)i);
        err_body((enum err_id)i, NULL, 0, &b);
        err_message((enum err_id)i, NULL, 0, &m);
        check_body(b.data, d->http_status, d->code, m.data);
    }
    buf_free(&b);
    buf_free(&m);
}
END_TEST

/* A field name echoed from the request may hold anything. */
START_TEST(body_escapes_args)
{
    static const char nasty[] = "a\"b\\c\nd\re\tf\x01g\x1fh/</script>";
    const char *const args[] = {nasty};
    struct buf b, m;

    buf_init(&b);
    buf_init(&m);
    err_body(E_PARAM_REQUIRED, args, 1, &b);
    err_message(E_PARAM_REQUIRED, args, 1, &m);
    ck_assert_str_eq(m.data, "Не указан обязательный параметр a\"b\\c\nd\re\tf\x01g\x1fh/</script>");
    check_body(b.data, 400, "4100", m.data);
    for (size_t k = 0; k < b.len; k++)
        ck_assert_msg((unsigned char)b.data[k] >= 0x20, "raw control byte 0x%02x in the body", b.data[k]);
    ck_assert_ptr_nonnull(strstr(b.data, "a\\\"b\\\\c\\nd\\re\\tf"));
    ck_assert_ptr_nonnull(strcasestr(b.data, "\\u0001g\\u001fh"));
    buf_free(&b);
    buf_free(&m);
}
END_TEST

/* ---- docs/errors.md ---- */

static char *markdown(size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    ck_assert_ptr_nonnull(f);
    err_write_markdown(f);
    ck_assert_int_eq(fclose(f), 0);
    return text;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t cap = 0;

    *len = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (*len + 4096 > cap) {
            cap = cap * 2 + 4096;
            text = realloc(text, cap);
            ck_assert_ptr_nonnull(text);
        }
        size_t n = fread(text + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    return text;
}

/* docs/errors.md in the source tree: $top_srcdir (make check sets it), else
 * next to this file. */
static void docs_path(char *out, size_t n)
{
    const char *top = getenv("top_srcdir");
    if (top && top[0]) {
        snprintf(out, n, "%s/docs/errors.md", top);
        return;
    }
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash ? (int)(slash - __FILE__) : 0;
    snprintf(out, n, "%.*s%s../docs/errors.md", dir, __FILE__, slash ? "/" : "");
}

START_TEST(docs_not_stale)
{
    char path[4096];
    size_t want_len, have_len;

    docs_path(path, sizeof(path));
    char *want = markdown(&want_len);
    char *have = read_file(path, &have_len);
    ck_assert_msg(have != NULL, "cannot read %s: run src/mipgw --list-errors > docs/errors.md", path);
    if (have_len != want_len || memcmp(have, want, want_len) != 0) {
        int line = 1;
        for (size_t k = 0; k < have_len && k < want_len && have[k] == want[k]; k++)
            line += have[k] == '\n';
        fprintf(stderr, "%s differs from err_write_markdown from line %d\n", path, line);
    }
    ck_assert_msg(have_len == want_len && memcmp(have, want, want_len) == 0,
                  "docs/errors.md is stale: run src/mipgw --list-errors > docs/errors.md");
    free(want);
    free(have);
}
END_TEST

START_TEST(markdown_table_rows)
{
    size_t len;
    char *text = markdown(&len);
    int rows = 0;
    /* The МИП table ends where the cabinet's section begins. */
    char *cabinet = strstr(text, "\n## The eHealth cabinet\n");
    ck_assert_ptr_nonnull(cabinet);

    ck_assert_uint_eq(len, strlen(text));
    ck_assert(ids_utf8_valid(text, len));
    ck_assert_msg(strncmp(text, "# ", 2) == 0, "the document starts with a title");
    for (char *line = text; line && *line && line < cabinet;) {
        char *end = strchr(line, '\n');
        ck_assert_msg(end != NULL, "the document ends with a newline");
        if (line[0] == '|' && line[1] == ' ' && line[2] >= '0' && line[2] <= '9') {
            /* | status | code | type | message | name |: six unescaped bars */
            int bars = 0;
            for (char *p = line; p < end; p++)
                bars += *p == '|' && (p == line || p[-1] != '\\');
            ck_assert_msg(bars == 6, "table row with %d cells: %.*s", bars - 1, (int)(end - line), line);
            rows++;
        }
        line = end + 1;
    }
    ck_assert_int_eq(rows, E__COUNT - 1); /* every entry but E_NONE */
    for (int i = 1; i < E__COUNT; i++) {
        const struct err_def *d = err_get((enum err_id)i);
        char row[64];
        snprintf(row, sizeof(row), "| %d | %s | %s | ", d->http_status, d->code, err_type_name(d->type));
        ck_assert_msg(strstr(text, row) != NULL, "no row for %s", d->code);
    }
    ck_assert_ptr_nonnull(strstr(text, "`E_CELL_TAKEN`"));
    ck_assert_ptr_nonnull(strstr(text, "`E_SHUTTING_DOWN`"));
    ck_assert_ptr_null(strstr(text, "`E_NONE`"));
    ck_assert_ptr_null(strstr(text, "E__COUNT"));
    free(text);
}
END_TEST

/* The cabinet's catalogue: a row each in the document, an envelope that is
 * JSON with the entry's status and type, and twins for the shared layers. */
START_TEST(ehealth_catalogue)
{
    size_t len;
    char *text = markdown(&len);
    char *cabinet = strstr(text, "\n## The eHealth cabinet\n");
    ck_assert_ptr_nonnull(cabinet);
    for (int i = 1; i < EH__COUNT; i++) {
        const struct eh_err_def *d = err_eh_get((enum eh_err_id)i);
        ck_assert_int_eq(d->id, i);
        ck_assert(d->http_status >= 400 && d->http_status <= 599);
        ck_assert(d->type[0] && d->message[0]);
        char row[32];
        snprintf(row, sizeof(row), "\n| %d | ", d->http_status);
        ck_assert_msg(strstr(cabinet, row) != NULL, "no cabinet row for %d", d->http_status);

        struct buf b;
        buf_init(&b);
        const char *args[] = {"why \"quoted\""};
        err_eh_body((enum eh_err_id)i, args, 1, "http://h/p", "rid", i == EH_VALIDATION ? "[]" : NULL, &b);
        char err[128];
        yajl_val v = yajl_tree_parse(b.data, err, sizeof(err));
        ck_assert_msg(v != NULL, "envelope of %s is not JSON: %s", d->type, b.data);
        const char *code[] = {"meta", "code", NULL}, *type[] = {"error", "type", NULL},
                   *rid[] = {"meta", "request_id", NULL}, *inv[] = {"error", "invalid", NULL};
        ck_assert_int_eq(YAJL_GET_INTEGER(yajl_tree_get(v, code, yajl_t_number)), d->http_status);
        ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(v, type, yajl_t_string)), d->type);
        ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(v, rid, yajl_t_string)), "rid");
        ck_assert((yajl_tree_get(v, inv, yajl_t_array) != NULL) == (i == EH_VALIDATION));
        yajl_tree_free(v);
        buf_free(&b);
    }
    ck_assert_int_eq(err_eh_get(err_eh_twin(E_BODY_TOO_LARGE))->http_status, 413);
    ck_assert_int_eq(err_eh_get(err_eh_twin(E_BODY_JSON))->http_status, 400);
    ck_assert_int_eq(err_eh_get(err_eh_twin(E_MIS_UNAUTHORIZED))->http_status, 401);
    ck_assert_int_eq(err_eh_get(err_eh_twin(E_STORE_UNAVAILABLE))->http_status, 503);
    ck_assert_int_eq(err_eh_twin(E_CELL_TAKEN), EH_INTERNAL);
    free(text);
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc;

    tc = tcase_create("seeds");
    tcase_add_loop_test(tc, seed_pair_in_catalogue, 0, N_SEED_ROWS);
    tcase_add_test(tc, seed_codes_carry_seed_messages);
    tcase_add_test(tc, schedule_period_placeholder);
    tcase_add_test(tc, token_missing_keeps_stray_quote);
    tcase_add_test(tc, ehealth_catalogue);
    suite_add_tcase(s, tc);

    tc = tcase_create("consistency");
    tcase_add_loop_test(tc, entry_consistent, 1, E__COUNT);
    tcase_add_test(tc, codes_unique);
    tcase_add_test(tc, none_and_notice);
    tcase_add_test(tc, out_of_range_is_internal);
    suite_add_tcase(s, tc);

    tc = tcase_create("placeholders");
    tcase_add_test(tc, fill_in_order);
    tcase_add_test(tc, fill_missing_args_empty);
    tcase_add_test(tc, fill_extra_args_ignored);
    tcase_add_test(tc, fill_no_placeholders_unchanged);
    tcase_add_test(tc, fill_args_not_expanded);
    suite_add_tcase(s, tc);

    tc = tcase_create("body");
    tcase_add_test(tc, body_exact);
    tcase_add_test(tc, body_every_entry);
    tcase_add_test(tc, body_escapes_args);
    tcase_add_test(tc, plain_bodies_agree);
    suite_add_tcase(s, tc);

    tc = tcase_create("docs");
    tcase_add_test(tc, docs_not_stale);
    tcase_add_test(tc, markdown_table_rows);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(errors_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
