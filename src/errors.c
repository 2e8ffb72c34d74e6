/* errors.c - the catalogue. The seeds' messages are copied letter for letter
 * (the stray quote after 5010's text included: it is in the seed). */
#include "errors.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#define V ERR_TYPE_VALIDATION
#define E ERR_TYPE_ERROR

/* One row per entry: id, HTTP status, Message_code, type, message. The one
 * list fills both the catalogue and the table of enum names that
 * err_write_markdown prints, so the two cannot disagree. */
#define ERR_CATALOGUE(X) \
    X(E_NONE, 200, "0", E, "") \
    X(E_VISIT_CANCELLED, 200, "2000", E, "Вызов отменен") \
    \
    X(E_NO_MKAB_IN_LPU, 400, "4000", V, "Не найден МКАБ: {guid} в лпу: {lpu}") \
    X(E_NO_CARDS, 404, "4001", E, \
        "По вашему полису и дате рождения не найдено ни одной медицинской карты.") \
    X(E_NO_EMK, 404, "4001", E, \
        "Ваша электронная медицинская карта отсутствует. Обратитесь в регистратуру медицинского учреждения.") \
    X(E_CHILDREN_LPU, 400, "4005", V, \
        "Вы пытаетесь записаться в детское учреждение. Запись пациентов старше 18 лет запрещена.") \
    X(E_SELF_BOOKING_BLOCKED, 400, "4007", V, \
        "Вам запрещена самостоятельная запись на прием через интернет или инфомат. Для записи на " \
        "прием обратитесь в регистратуру медицинского учреждения лично или по телефону.") \
    X(E_NOT_ON_DISPENSARY, 400, "4007", V, \
        "Вы не состоите на диспансерном учете у данного специалиста. Запись невозможна.") \
    X(E_ONE_PER_SPECIALITY, 400, "4008", V, \
        "Вы уже записаны {ФИО} на {Время}. Запрещено иметь более одной активной записи на прием " \
        "на одну специальность.") \
    X(E_CELL_TAKEN, 400, "4009", V, \
        "Это время уже занято. Выберите другое свободное время приема.") \
    X(E_AGE_GROUP, 400, "4029", V, \
        "Запись недоступна для данной возрастной группы. Сотрудниками МО было установлено " \
        "ограничение по возрасту при записи на прием.") \
    X(E_DIRECTION_UNKNOWN, 400, "4031", E, \
        "Направление с таким номером не существует, либо принадлежит другому пациенту") \
    X(E_DIRECTION_PAIR, 400, "4033", V, \
        "directionID и directionType не могут быть указаны отдельно") \
    X(E_TIME_OR_CELL_EMPTY, 400, "4036", V, \
        "Время и гвид врача или гвид ячейки расписания не должны быть пустыми") \
    X(E_SCHEDULE_PERIOD, 400, "5066", V, \
        "Недопустимый период расписания. Максимальный период {N} дней") \
    X(E_TOKEN_EXPIRED, 403, "5007", E, "Время действия токена истекло") \
    X(E_TOKEN_INVALID, 403, "5008", E, "Токен некорректен") \
    X(E_TOKEN_SIGNATURE, 403, "5009", E, "Подпись запроса некорректна") \
    X(E_TOKEN_MISSING, 403, "5010", E, \
        "Запрос должен содержать 'Authorization: Bearer ...'\"") \
    X(E_CLIENT_APP_UNKNOWN, 403, "5096", E, \
        "Клиентское приложение с данным идентификатором не найдено") \
    X(E_EMK_CLOSED, 403, "5096", E, \
        "Ваша электронная медицинская карта закрыта. Обратитесь в регистратуру медицинского учреждения.") \
    X(E_CARDS_UNAVAILABLE, 500, "5097", E, \
        "Не удалось получить данные о медицинских картах пациента.") \
    \
    X(E_PARAM_REQUIRED, 400, "4100", V, "Не указан обязательный параметр {field}") \
    X(E_PARAM_FORMAT, 400, "4101", V, "Параметр {field} имеет неверный формат") \
    X(E_PARAM_CHECKSUM, 400, "4102", V, \
        "Параметр {field} не прошёл проверку контрольного числа") \
    X(E_PARAM_PAIR, 400, "4103", V, "Параметры {field} и {field} указываются только вместе") \
    X(E_PARAM_COMBINATION, 400, "4104", V, \
        "Набор параметров не соответствует ни одному способу идентификации пациента") \
    X(E_PARAM_UNEXPECTED, 400, "4105", V, "Параметр {field} не поддерживается") \
    X(E_PARAM_TOO_MANY, 400, "4106", V, "Слишком много параметров в запросе") \
    X(E_BODY_JSON, 400, "4110", V, "Тело запроса не является корректным JSON: {reason}") \
    X(E_BODY_TOO_LARGE, 413, "4113", V, "Тело запроса слишком велико") \
    X(E_CONTENT_TYPE, 415, "4115", V, "Тело запроса должно иметь тип application/json") \
    X(E_NOT_FOUND, 404, "4140", E, "Метод не найден") \
    X(E_METHOD, 405, "4150", E, "Метод {method} не поддерживается для этого адреса") \
    X(E_RATE_LIMITED, 429, "4290", E, "Слишком много запросов. Повторите попытку позже.") \
    X(E_DATE_ORDER, 400, "4107", V, "Параметр {field} не может быть раньше параметра {field}") \
    X(E_BATCH_TOO_LARGE, 413, "4114", V, "В одном запросе не более {max} элементов") \
    X(E_MIS_UNAUTHORIZED, 401, "4120", E, "Неверный логин или пароль") \
    X(E_MIS_FORBIDDEN_LPU, 403, "4121", E, \
      "Учётной записи {login} не разрешено передавать данные ЛПУ {lpu}") \
    X(E_LPU_NOT_FOUND, 404, "4141", E, "ЛПУ {lpu} не найдено") \
    X(E_RESOURCE_NOT_FOUND, 404, "4142", E, "Ресурс {resource} не найден в ЛПУ {lpu}") \
    X(E_VISIT_NOT_FOUND, 404, "4143", E, "Запись на прием {visitId} не найдена") \
    X(E_LPU_MISMATCH, 400, "4108", V, "Параметры {field} и {field} указывают на разные ЛПУ") \
    X(E_CELL_NONE, 400, "4130", V, "В расписании ресурса нет приема на {date} {time}") \
    X(E_CELL_PAST, 400, "4131", V, "Время приема {date} {time} уже прошло") \
    X(E_CELL_CLOSED, 400, "4132", V, \
      "Это время закрыто для записи через интернет. Выберите другое свободное время приема.") \
    X(E_REFERRAL_REQUIRED, 400, "4133", V, \
      "Запись к этому специалисту возможна только по направлению.") \
    X(E_CANCEL_PAST, 400, "4135", V, "Время приема наступило: запись нельзя отменить.") \
    X(E_CANCEL_VISITED, 400, "4136", V, "Прием уже состоялся: запись нельзя отменить.") \
    \
    X(E_INTERNAL, 500, "5000", E, "Внутренняя ошибка сервера") \
    X(E_STORE_UNAVAILABLE, 503, "5030", E, \
        "Хранилище данных временно недоступно. Повторите попытку позже.") \
    X(E_OVERLOADED, 503, "5031", E, "Сервис перегружен. Повторите попытку позже.") \
    X(E_SHUTTING_DOWN, 503, "5032", E, "Сервис останавливается. Повторите попытку позже.") \
    X(E_UPSTREAM_LOST, 502, "5033", E, \
        "Ответ сервиса не получен, результат запроса неизвестен. Повторите попытку позже.")

#define ERR_ROW(id, status, code, type, message) [id] = {id, status, code, type, message},
#define ERR_NAME(id, status, code, type, message) [id] = #id,
#define ERR_ONE(id, status, code, type, message) +1

static const struct err_def catalogue[E__COUNT] = {ERR_CATALOGUE(ERR_ROW)};
static const char *const names[E__COUNT] = {ERR_CATALOGUE(ERR_NAME)};
/* Every id has exactly one row: a missing row would leave a zeroed hole,
 * which the count catches; a repeated one trips -Woverride-init as well. */
_Static_assert(0 ERR_CATALOGUE(ERR_ONE) == E__COUNT, "one catalogue row per enum err_id");

#undef V
#undef E

const struct err_def *err_get(enum err_id id)
{
    if ((int)id < 0 || id >= E__COUNT)
        id = E_INTERNAL;
    return &catalogue[id];
}

const char *err_name(enum err_id id)
{
    return names[err_get(id)->id];
}

const char *err_type_name(enum err_type t)
{
    return t == ERR_TYPE_VALIDATION ? "Validation" : "Error";
}

/* A message with its {placeholders} filled by args in order. */
static void fill_placeholders(const char *m, const char *const *args, int nargs, struct buf *out)
{
    int next = 0;
    buf_reset(out);
    while (*m) {
        const char *open = strchr(m, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        if (!open || !close) {
            buf_puts(out, m);
            break;
        }
        buf_append(out, m, (size_t)(open - m));
        if (next < nargs && args[next])
            buf_puts(out, args[next]);
        next++;
        m = close + 1;
    }
    if (!out->data)
        buf_append(out, "", 0);
}

void err_message(enum err_id id, const char *const *args, int nargs, struct buf *out)
{
    fill_placeholders(err_get(id)->message, args, nargs, out);
}

/* The bodies of entries answered without arguments (4009 on a booked
 * cell, 5010...), made once: such answers are hot paths. */
static struct buf plain_bodies[E__COUNT];
static pthread_once_t plain_once = PTHREAD_ONCE_INIT;

static void plain_bodies_make(void)
{
    for (int i = 0; i < E__COUNT; i++) {
        buf_init(&plain_bodies[i]);
        err_body((enum err_id)i, NULL, 0, &plain_bodies[i]);
    }
}

const char *err_plain_body(enum err_id id, size_t *len)
{
    pthread_once(&plain_once, plain_bodies_make);
    const struct buf *b = &plain_bodies[err_get(id)->id];
    *len = b->len;
    return b->data;
}

void err_body(enum err_id id, const char *const *args, int nargs, struct buf *out)
{
    const struct err_def *d = err_get(id);
    struct buf msg;
    buf_init(&msg);
    err_message(id, args, nargs, &msg);

    /* yajl escapes the message: a field name echoed from the request may
     * hold quotes or control characters. */
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"Code", 4);
    yajl_gen_integer(g, d->http_status);
    yajl_gen_string(g, (const unsigned char *)"Message_code", 12);
    yajl_gen_string(g, (const unsigned char *)d->code, strlen(d->code));
    yajl_gen_string(g, (const unsigned char *)"Message", 7);
    yajl_gen_string(g, (const unsigned char *)msg.data, msg.len);
    yajl_gen_map_close(g);
    const unsigned char *p;
    size_t n;
    yajl_gen_get_buf(g, &p, &n);
    buf_reset(out);
    buf_append(out, p, n);
    yajl_gen_free(g);
    buf_free(&msg);
}

/* ---- the eHealth cabinet's catalogue ---- */

/* Types and messages as the eHealth API writes them where the reference
 * gives them (jwt_expired, tax_id_exists, validation_failed), the
 * reference's generic types (access_denied, forbidden, not_found,
 * request_conflict, request_malformed) elsewhere. */
#define EH_CATALOGUE(X) \
    X(EH_NONE, 200, "", "") \
    X(EH_ACCESS_DENIED, 401, "access_denied", "Invalid or missing access token") \
    X(EH_JWT_EXPIRED, 401, "jwt_expired", "JWT expired") \
    X(EH_CLIENT_UNAUTHORIZED, 401, "access_denied", "Invalid client credentials") \
    X(EH_CLIENT_FORBIDDEN, 403, "forbidden", "This client may not use the cabinet registration") \
    X(EH_NOT_FOUND, 404, "not_found", "Resource not found") \
    X(EH_METHOD, 405, "method_not_allowed", "Method not allowed for this resource") \
    X(EH_UR_GONE, 409, "request_conflict", "User request not found, expired or already used") \
    X(EH_PERSON_MISMATCH, 409, "request_conflict", \
      "Tax id or names do not match the user request") \
    X(EH_TAX_ID_EXISTS, 409, "tax_id_exists", "User with this tax_id already exists") \
    X(EH_MALFORMED, 400, "request_malformed", "Malformed request: {reason}") \
    X(EH_TOO_LARGE, 413, "request_too_large", "Request body is too large") \
    X(EH_CONTENT_TYPE, 415, "content_type_invalid", "Content-Type must be application/json") \
    X(EH_VALIDATION, 422, "validation_failed", \
      "Validation failed. You can find validators description at our API Manifest: " \
      "http://docs.apimanifest.apiary.io/#introduction/interacting-with-api-manifest/data-validation.") \
    X(EH_RATE_LIMITED, 429, "too_many_requests", \
      "Too many verification requests for this phone number; try again later") \
    X(EH_INTERNAL, 500, "internal_error", "Internal server error") \
    X(EH_SMS_FAILED, 503, "sms_not_sent", "The SMS could not be sent; try again later") \
    X(EH_UNAVAILABLE, 503, "service_unavailable", "The data store is temporarily unavailable; try again later") \
    X(EH_OVERLOADED, 503, "service_overloaded", "The service is overloaded; try again later") \
    X(EH_SHUTTING_DOWN, 503, "shutting_down", "The service is shutting down; try again later") \
    X(EH_UPSTREAM_LOST, 502, "upstream_lost", \
      "No answer from the service: the outcome of the request is unknown; try again later")

#define EH_ROW(id, status, type, message) [id] = {id, status, type, message},
#define EH_NAME(id, status, type, message) [id] = #id,
#define EH_ONE(id, status, type, message) +1
static const struct eh_err_def eh_catalogue[EH__COUNT] = {EH_CATALOGUE(EH_ROW)};
static const char *const eh_names[EH__COUNT] = {EH_CATALOGUE(EH_NAME)};
_Static_assert(0 EH_CATALOGUE(EH_ONE) == EH__COUNT, "one catalogue row per enum eh_err_id");

const char *err_eh_name(enum eh_err_id id)
{
    return eh_names[err_eh_get(id)->id];
}

const struct eh_err_def *err_eh_get(enum eh_err_id id)
{
    if ((int)id < 0 || id >= EH__COUNT)
        id = EH_INTERNAL;
    return &eh_catalogue[id];
}

enum eh_err_id err_eh_twin(enum err_id id)
{
    switch (id) {
    case E_MIS_UNAUTHORIZED: return EH_CLIENT_UNAUTHORIZED;
    case E_BODY_JSON: return EH_MALFORMED;
    case E_BODY_TOO_LARGE: return EH_TOO_LARGE;
    case E_CONTENT_TYPE: return EH_CONTENT_TYPE;
    case E_NOT_FOUND: return EH_NOT_FOUND;
    case E_METHOD: return EH_METHOD;
    case E_RATE_LIMITED: return EH_RATE_LIMITED;
    case E_STORE_UNAVAILABLE: return EH_UNAVAILABLE;
    case E_OVERLOADED: return EH_OVERLOADED;
    case E_SHUTTING_DOWN: return EH_SHUTTING_DOWN;
    case E_UPSTREAM_LOST: return EH_UPSTREAM_LOST;
    default: return EH_INTERNAL;
    }
}

static void gen_cstr(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void err_eh_meta(yajl_gen g, int status, const char *url, const char *request_id)
{
    gen_cstr(g, "meta");
    yajl_gen_map_open(g);
    gen_cstr(g, "code");
    yajl_gen_integer(g, status);
    gen_cstr(g, "url");
    gen_cstr(g, url ? url : "");
    gen_cstr(g, "type");
    gen_cstr(g, "object");
    gen_cstr(g, "request_id");
    gen_cstr(g, request_id ? request_id : "");
    yajl_gen_map_close(g);
}

void err_eh_body(enum eh_err_id id, const char *const *args, int nargs, const char *url,
                 const char *request_id, const char *invalid, struct buf *out)
{
    const struct eh_err_def *d = err_eh_get(id);
    struct buf msg;
    buf_init(&msg);
    fill_placeholders(d->message, args, nargs, &msg);

    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    err_eh_meta(g, d->http_status, url, request_id);
    gen_cstr(g, "error");
    yajl_gen_map_open(g);
    gen_cstr(g, "type");
    gen_cstr(g, d->type);
    gen_cstr(g, "message");
    yajl_gen_string(g, (const unsigned char *)msg.data, msg.len);
    const unsigned char *p;
    size_t n;
    yajl_gen_get_buf(g, &p, &n);
    buf_reset(out);
    buf_append(out, p, n);
    yajl_gen_free(g);
    /* The "invalid" array is JSON the validator made: spliced in as text. */
    if (invalid) {
        buf_puts(out, ",\"invalid\":");
        buf_puts(out, invalid);
    }
    buf_puts(out, "}}");
    buf_free(&msg);
}

/* Markdown text: the characters that would end a table cell or start
 * emphasis, code or HTML are escaped; everything else goes out verbatim. */
static void md_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (strchr("\\|*_`<>[]", *s))
            fputc('\\', out);
        fputc(*s, out);
    }
}

void err_write_markdown(FILE *out)
{
    fputs("# Error catalogue\n"
          "\n"
          "<!-- Generated from src/errors.c by `src/mipgw --list-errors > docs/errors.md`.\n"
          "     Do not edit: tests/check_errors fails when this file and the code differ. -->\n"
          "\n"
          "Every answer that is not a plain success carries the МИП standard body, the\n"
          "HTTP status repeated in `Code`, the internal code as a string in\n"
          "`Message_code`, and the message with its `{placeholders}` filled in order:\n"
          "\n"
          "```json\n"
          "{\"Code\": 400, \"Message_code\": \"4009\", \"Message\": \"Это время уже занято. Выберите другое свободное время приема.\"}\n"
          "```\n"
          "\n"
          "Internal codes follow the vendor's ranges: 2xxx notices, 4xxx client and\n"
          "validation errors, 5xxx authorization, configuration and server errors.\n"
          "The codes of seeds 000-002 keep the seeds' HTTP status, code, type and\n"
          "message letter for letter (5010's stray closing quote included; 5066's N\n"
          "is the placeholder `{N}`).\n"
          "\n"
          "The project's own codes: 41xx for requests the gateway refuses (a missing\n"
          "or malformed parameter, a body that is not JSON, too large or of the wrong\n"
          "type, an unknown path or method, an MIS login that fails or writes for\n"
          "an LPU it does not own, an unknown LPU or resource), 4290 for rate\n"
          "limiting, and 5000 and 5030-5032 for the service itself (an internal\n"
          "error, the store unreachable, overload, shutdown). 5033 is nginx's, in\n"
          "front: a gateway that died with the request (its outcome unknown).\n", out);

    /* Codes that carry more than one message, as the seeds give them. */
    int shared = 0;
    for (int i = 1; i < E__COUNT; i++) {
        int before = 0, count = 0;
        for (int j = 1; j < E__COUNT; j++) {
            if (strcmp(catalogue[i].code, catalogue[j].code) == 0) {
                count++;
                before += j < i;
            }
        }
        if (count > 1 && !before) {
            fputs(shared++ ? ", " : "\nCodes with several messages, one per situation: ", out);
            fputs(catalogue[i].code, out);
        }
    }
    if (shared)
        fputs(".\n", out);

    fputs("\n"
          "| HTTP | Message_code | Type | Message | Name |\n"
          "|---:|---|---|---|---|\n", out);
    for (int i = 1; i < E__COUNT; i++) { /* E_NONE is no answer */
        const struct err_def *d = &catalogue[i];
        fprintf(out, "| %d | %s | %s | ", d->http_status, d->code, err_type_name(d->type));
        md_text(out, d->message);
        fprintf(out, " | `%s` |\n", names[i]);
    }

    fputs("\n"
          "## The eHealth cabinet\n"
          "\n"
          "The routes under `/private/cabinet/` (issue 5, seed 004) answer in the eHealth\n"
          "envelope instead, with `error.type` and `error.message` from this table; a\n"
          "422 adds `error.invalid`, one entry per broken rule (see docs/api.md). A\n"
          "shared layer's refusal there (body limits, JSON, Basic auth, the stores,\n"
          "shutdown) takes its eHealth twin.\n"
          "\n"
          "```json\n"
          "{\"meta\": {\"code\": 409, \"url\": \"http://host/private/cabinet/registration/user_request\", \"type\": \"object\", \"request_id\": \"…\"},\n"
          " \"error\": {\"type\": \"tax_id_exists\", \"message\": \"User with this tax_id already exists\"}}\n"
          "```\n"
          "\n"
          "| HTTP | error.type | error.message | Name |\n"
          "|---:|---|---|---|\n", out);
    for (int i = 1; i < EH__COUNT; i++) {
        const struct eh_err_def *d = &eh_catalogue[i];
        fprintf(out, "| %d | ", d->http_status);
        md_text(out, d->type);
        fputs(" | ", out);
        md_text(out, d->message);
        fprintf(out, " | `%s` |\n", eh_names[i]);
    }
}
