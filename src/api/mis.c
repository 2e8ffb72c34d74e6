/* api/mis.c - GET /mis/v1/whoami (the project's own): which login an MIS
 * is authenticated as and which LPUs it may write for, so that an
 * integrator can check credentials without uploading anything. */
#include "api/api.h"
#include "json.h"
#include "misauth.h"

static void whoami_reply(struct req *r, const struct misauth_login *who)
{
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "Login", who->login);
    json_gen_str(g, "LpuMcods");
    yajl_gen_array_open(g);
    for (int i = 0; i < who->nmcods; i++)
        json_gen_str(g, who->mcods[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    req_reply_gen(r, 200, g);
}

void api_mis_whoami(struct req *r)
{
    misauth_require(r, whoami_reply);
}
