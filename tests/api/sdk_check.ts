// The typescript-fetch client generated from /openapi.json, compiled with tsc and run
// under node by tests/api/test_openapi_sdks.py against a real serve: create, get, list
// and delete a link, read every event of GET /v1/events (each through its typed model),
// and parse a 404 as Error. Prints what it saw as one JSON line; the test checks it.
import {
    Configuration,
    ModelErrorFromJSON,
    EventsApi,
    OnboardingLinksApi,
    ResponseError,
} from "./index";

declare const process: { argv: string[]; exit(code: number): never };

async function main(): Promise<void> {
    const [base, key] = process.argv.slice(2);
    const config = new Configuration({ basePath: base, accessToken: key });
    const links = new OnboardingLinksApi(config);
    const events = new EventsApi(config);

    const created = await links.createOnboardingLink({
        onboardingLinkCreate: { name: "TS shop", externalId: "crm-ts" },
    });
    const got = await links.getOnboardingLink({ id: created.data.id });
    const listed = await links.listOnboardingLinks({ externalId: "crm-ts", limit: 5 });
    const deleted = await links.deleteOnboardingLink({ id: created.data.id });
    let missing: unknown = null;
    try {
        await links.getOnboardingLink({ id: created.data.id });
    } catch (error) {
        if (!(error instanceof ResponseError)) throw error;
        const parsed = ModelErrorFromJSON(await error.response.json());
        missing = { status: error.response.status, ...parsed.error };
    }
    const seen: { id: string; event: string; data: boolean; at: string }[] = [];
    let after: string | undefined = undefined;
    for (;;) {
        const page = await events.listEvents({ limit: 100, startingAfter: after });
        for (const event of page.data) {
            // The typed model: its timestamp a Date, its data an object.
            seen.push({
                id: event.id,
                event: event.event,
                data: typeof event.data === "object" && event.data !== null,
                at: event.timestamp.toISOString(),
            });
        }
        if (!page.pagination.hasMore) break;
        after = page.pagination.startingAfter ?? undefined;
    }
    const one = seen.length ? await events.getEvent({ id: seen[0].id }) : null;
    console.log(
        JSON.stringify({
            created: { id: created.data.id, name: created.data.name, status: created.data.status },
            got: got.data.externalId,
            listed: listed.data.map((link) => link.id),
            deleted: deleted.data,
            missing,
            events: seen,
            one: one ? one.data.event : null,
        }),
    );
}

main().catch((error) => {
    console.error(error instanceof Error ? error.stack : String(error));
    process.exit(1);
});
