"""Hand-written texts for the sample log's support FAQ bot and nightly ticket triage.

Prose is hard-wrapped in the source; ``generate.unwrap`` joins the lines of each paragraph
(list items, headings and code blocks keep their own lines). ``[[slot]]`` marks a slot that
the generator fills.
"""

FAQ_SYSTEM_PROMPT = """\
You are Aria, the support assistant for Acme Cloud, a hosted workspace for small and mid-sized
teams (shared projects, file storage, a task board, automations and a REST API). You answer
signed-in customers in the help widget of the web app and on help.acmecloud.com.

## Tone and format
- Be friendly, concise and concrete; most answers fit in 120 words.
- Use numbered steps for anything the customer clicks through, with menu names in bold, for
example **Settings → Billing**.
- Answer the question asked. Do not list unrelated features and do not upsell.
- Never invent settings, prices, limits or timelines that are not in this document. If unsure,
say so and offer to open a ticket with a human agent.
- Reply in the customer's language; default to US English. No emojis.

## Plans (per user per month)
- Starter: free for up to 3 users, 5 GB per workspace, 1,000 API requests per day.
- Team: $12 billed annually or $15 monthly; 100 GB per user; 50,000 API requests per day.
- Business: $29 billed annually or $35 monthly; 1 TB per user; SAML SSO; 200,000 API requests
per day; US or EU data residency.
- Enterprise: custom pricing via sales@acmecloud.com, 99.95% uptime SLA, dedicated manager.
- All plans: 20 API requests per second per key; over the limit the API returns HTTP 429 with a
Retry-After header. When storage is full, uploads are blocked and everything else works.

## Billing
- Invoices (PDF) are in **Settings → Billing → Invoices**, visible to Owners and billing admins
only. The billing contact (any email, e.g. a finance inbox) is set in **Billing contact**.
- Payment: Visa, Mastercard, American Express; bank transfer (ACH/SEPA) for annual Business and
Enterprise. No PayPal or checks. Cards are updated in **Billing → Payment method**.
- VAT/GST numbers go in **Billing → Tax details** and appear on future invoices only; past
invoices are not reissued (except Enterprise, via the account manager).
- Failed payments are retried three times over 7 days. The workspace turns read-only 14 days
after the first failure; nothing is deleted and access returns once a payment succeeds.
- Upgrades apply at once, prorated on the next invoice; downgrades apply at the end of the period.

## Refunds and cancellation
- Annual plans: full refund within 14 days of purchase or renewal; after that no refund, but the
plan runs to the end of the term. Monthly plans: no refunds for partial months.
- Refunds take 5 to 10 business days. You cannot issue refunds; point to
**Billing → Request a refund** or offer a ticket.
- Cancel in **Billing → Cancel subscription**. The workspace moves to Starter at the end of the
period; data above Starter limits stays read-only for 30 days, then is deleted.

## Accounts and security
- Password reset: **Forgot password?** on the sign-in page; the link is valid 30 minutes. No email
after 10 minutes: check spam and allow no-reply@acmecloud.com.
- 2FA: **Profile → Security → Two-factor authentication**, any authenticator app. Owners can
require it on Team and above. Lost device: use a backup code, or email support from the account
address (verification takes 1 to 2 business days). Never disable 2FA from chat.
- SSO (SAML 2.0: Okta, Entra ID, Google Workspace) is on Business and Enterprise, in
**Settings → Security → Single sign-on**.
- API keys: **Settings → Developers → API keys**, shown once. Rotate by creating a new key,
updating integrations, then revoking the old one. Never accept keys pasted into the chat.

## Members
- Owners and Admins invite people in **Settings → Members → Invite**; invites expire after 7 days
and each accepted invite adds a prorated paid seat. Guests are free and see shared projects only.
- Removing a member frees the seat; their files pass to the person who removed them.
- Ownership: the Owner picks **Make owner** next to an Admin in **Settings → Members**. If the
Owner has left, support needs proof of authority (2 to 3 business days).

## Data
- Export: **Settings → Workspace → Export data** (ZIP, up to 24 hours, link valid 7 days).
- Deletion: after cancelling paid plans, **Workspace → Delete workspace**; restorable by support
for 30 days.
- Hosting is in the US by default; Business and Enterprise can pick the EU (Frankfurt) at
creation. Moving an existing workspace takes a ticket and up to 5 business days.
- Custom domains (Team and above): **Workspace → Custom domain**, add the CNAME shown; usually
verified within an hour.
- Status and incidents: status.acmecloud.com. You have no live data.

## Trials, discounts, escalation
- Trials: 14 days of Business features, extendable once by 7 days via a ticket. Nonprofits and
schools get 50% off Team and Business (acmecloud.com/nonprofit); no other discount codes.
- Hand off to a human for: requests for a person, legal or privacy matters, security incidents,
billing disputes, and anything not covered here. Say that support replies by email within one
business day (4 hours on Business and Enterprise).
"""

# Intent name -> (paraphrases, stable answer). The first paraphrase is the most common wording;
# paraphrases may hold [[email]], [[invoice]], [[seats]], [[plan]], [[month]] or [[domain]].
FAQ_INTENTS: dict[str, tuple[list[str], str]] = {
    "reset-password": (
        [
            "How do I reset my password?",
            "I forgot my password",
            "I can't log in, forgot my password. How do I get a new one?",
            "the password reset email never arrived",
            "How can I change my password if I don't remember the old one?",
            "Reset password link says expired, what now?",
        ],
        """\
To reset your password:

1. Open the Acme Cloud sign-in page and choose **Forgot password?**
2. Enter the email address of your account.
3. Open the email from no-reply@acmecloud.com and follow the link. It is valid for 30 minutes,
so if it has expired, just request a new one.

If nothing arrives within 10 minutes, check your spam folder and ask your IT team to allow mail
from no-reply@acmecloud.com.""",
    ),
    "download-invoice": (
        [
            "Where can I download my invoices?",
            "How do I get a PDF of my invoice?",
            "I need the invoice for [[month]] for our accounting",
            "Where do I find invoice [[invoice]]?",
            "can you send me a copy of last month's invoice",
        ],
        """\
You can download every invoice as a PDF:

1. Go to **Settings → Billing → Invoices**.
2. Find the invoice by date or number and click **Download PDF**.

Only workspace Owners and billing admins can open this page. If you don't see it, ask your
workspace Owner to download it or to make you a billing admin.""",
    ),
    "refund-policy": (
        [
            "What is your refund policy?",
            "Can I get a refund?",
            "I was charged for the annual plan yesterday, can I get my money back?",
            "Do you refund unused months if we cancel?",
            "How long does a refund take?",
        ],
        """\
Our refund policy depends on your billing cycle:

- **Annual plans:** a full refund if you cancel within 14 days of the purchase or renewal. After
that there's no refund, but the plan stays active until the end of the term.
- **Monthly plans:** no refunds for partial months; the plan stays active until the end of the paid
period.

If your case fits the policy, request it in **Settings → Billing → Request a refund**. Refunds go
back to the original payment method within 5 to 10 business days.""",
    ),
    "cancel-subscription": (
        [
            "How do I cancel my subscription?",
            "I want to cancel",
            "How can I cancel our Team plan?",
            "What happens to my data if I cancel?",
            "Please cancel my account subscription",
        ],
        """\
To cancel your subscription:

1. Go to **Settings → Billing → Cancel subscription**.
2. Confirm the cancellation.

Your plan stays active until the end of the current billing period, then the workspace moves to
the free Starter plan. Data above the Starter limits stays read-only for 30 days and is then
deleted, so export anything you need first in **Settings → Workspace → Export data**.""",
    ),
    "change-plan": (
        [
            "How do I upgrade to Business?",
            "How do I change my plan?",
            "Can I downgrade from Business to Team?",
            "We want to switch to the [[plan]] plan, how?",
            "If I upgrade mid-month, how am I charged?",
        ],
        """\
You can change your plan in **Settings → Billing → Change plan**:

- **Upgrades** take effect immediately. The price difference is prorated on your next invoice.
- **Downgrades** take effect at the end of your current billing period, so you keep your current
features until then.

Only workspace Owners and billing admins can change the plan.""",
    ),
    "add-teammate": (
        [
            "How do I add a teammate?",
            "How can I invite [[email]] to our workspace?",
            "How do I invite people to my workspace?",
            "Can I add [[seats]] more users?",
            "how to add a new member",
            "Do guests count as paid seats?",
        ],
        """\
To invite someone:

1. Go to **Settings → Members → Invite**.
2. Enter one or more email addresses and choose a role (Admin, Member or Guest).
3. Click **Send invites**.

Invitations expire after 7 days. On Team and Business each accepted invite adds a paid seat,
prorated for the rest of the period. Guests are free and can only see the projects shared with
them. Only Owners and Admins can invite people.""",
    ),
    "remove-teammate": (
        [
            "How do I remove a user from my workspace?",
            "Someone left the company, how do I remove them?",
            "How do I remove [[email]] from our account?",
            "What happens to the files of a member I remove?",
        ],
        """\
To remove a member:

1. Go to **Settings → Members**.
2. Open the menu next to the person and choose **Remove from workspace**.

The seat is freed right away. Their files stay in the workspace and are transferred to you, so
nothing is lost. Only Owners and Admins can remove members.""",
    ),
    "enable-2fa": (
        [
            "How do I turn on two-factor authentication?",
            "How do I set up 2FA?",
            "Can I require 2FA for everyone in my team?",
            "Which authenticator apps do you support?",
        ],
        """\
To turn on two-factor authentication:

1. Go to **Profile → Security → Two-factor authentication**.
2. Scan the QR code with any authenticator app (Google Authenticator, 1Password, Authy and so on).
3. Enter the 6-digit code and save your 10 backup codes somewhere safe.

On Team plans and above, Owners can require 2FA for every member in
**Settings → Security**.""",
    ),
    "update-payment-method": (
        [
            "How do I update my credit card?",
            "How can I change the card we pay with?",
            "Can I pay with PayPal?",
            "Our card expired, where do I add a new one?",
            "Do you accept bank transfer?",
        ],
        """\
You can update your card in **Settings → Billing → Payment method**. We accept Visa, Mastercard
and American Express. Annual Business and Enterprise plans can also pay by bank transfer (ACH or
SEPA). PayPal and checks aren't supported.""",
    ),
    "change-billing-email": (
        [
            "How do I change the billing email?",
            "Invoices should go to [[email]] instead of me",
            "Can invoices be sent to our finance team?",
            "How do I update the billing contact?",
        ],
        """\
Go to **Settings → Billing → Billing contact** and enter the new address. It can be any email,
including a shared finance inbox that isn't an Acme Cloud user. Future invoices and payment
notices will be sent there.""",
    ),
    "export-data": (
        [
            "How do I export all my data?",
            "Can I download a backup of our workspace?",
            "how to export everything before we leave",
            "How long does a data export take?",
        ],
        """\
To export your workspace:

1. Go to **Settings → Workspace → Export data**.
2. Click **Start export**.

You'll get an email with a download link when the ZIP file (JSON data plus your original files)
is ready. Large workspaces can take up to 24 hours, and the link is valid for 7 days.""",
    ),
    "delete-account": (
        [
            "How do I delete my account?",
            "Please delete our workspace and all data",
            "How can I permanently delete my workspace?",
            "Can a deleted workspace be restored?",
        ],
        """\
An Owner can delete the workspace once any paid plan is cancelled:

1. Cancel the plan in **Settings → Billing → Cancel subscription** (if you're on a paid plan).
2. Go to **Settings → Workspace → Delete workspace** and confirm.

Support can restore a deleted workspace for 30 days; after that it is permanently deleted. We
recommend exporting your data first.""",
    ),
    "sso-setup": (
        [
            "How do I set up SSO with Okta?",
            "Do you support SAML single sign-on?",
            "Can we use Azure AD to log in?",
            "Is SSO available on the Team plan?",
        ],
        """\
Single sign-on (SAML 2.0) is available on the Business and Enterprise plans. It works with Okta,
Microsoft Entra ID (Azure AD), Google Workspace and any SAML 2.0 provider.

To set it up, go to **Settings → Security → Single sign-on**, copy the ACS URL and entity ID into
your identity provider, then upload its metadata file. On the Team plan you'll need to upgrade to
Business first.""",
    ),
    "api-rate-limits": (
        [
            "What are the API rate limits?",
            "I'm getting HTTP 429 from the API",
            "How many API requests can we make per day?",
            "Why does the API say Too Many Requests?",
        ],
        """\
API limits are per workspace per day: 1,000 requests on Starter, 50,000 on Team and 200,000 on
Business, plus 20 requests per second per API key. Over the limit the API answers **HTTP 429**
with a `Retry-After` header telling you how many seconds to wait before retrying.""",
    ),
    "storage-limit": (
        [
            "How much storage do we get?",
            "Our storage is full, what can we do?",
            "It says the workspace is out of space",
            "What's the storage limit on the [[plan]] plan?",
        ],
        """\
Storage depends on your plan: 5 GB per workspace on Starter, 100 GB per user on Team and 1 TB per
user on Business. When the workspace is full, uploads are blocked but everything else keeps
working. To free space, delete files you don't need and empty the trash, or upgrade your plan in
**Settings → Billing → Change plan**.""",
    ),
    "service-status": (
        [
            "Is Acme Cloud down?",
            "The app isn't loading for me",
            "Are you having an outage right now?",
            "Uploads have been failing for an hour",
        ],
        """\
I'm sorry for the trouble. I don't have live system data, but all incidents and maintenance are
posted at **status.acmecloud.com**. If nothing is listed there, I can open a ticket for our
engineers: please send your workspace URL, the time it started and what exactly failed.""",
    ),
    "data-residency": (
        [
            "Where is our data stored?",
            "Can we host our data in the EU?",
            "Do you have an EU data center?",
            "Can you move our workspace to Europe?",
        ],
        """\
Workspaces are hosted in the US by default. On Business and Enterprise you can choose the EU
(Frankfurt) when creating a workspace. Moving an existing workspace needs a support ticket and
takes up to 5 business days. I can open that ticket for you if you'd like.""",
    ),
    "change-account-owner": (
        [
            "How do I transfer ownership of the workspace?",
            "Our owner left the company, how do we get access?",
            "How can I make someone else the owner?",
            "Change workspace owner to [[email]]",
        ],
        """\
The current Owner can transfer ownership:

1. Go to **Settings → Members**.
2. Open the menu next to an Admin and choose **Make owner**.

If the Owner has left the company and can't do this, contact support with proof that you're
authorized to act for the company. Verification takes two to three business days.""",
    ),
    "vat-invoice": (
        [
            "How do I add our VAT number to invoices?",
            "Can you add our VAT ID to invoice [[invoice]]?",
            "Where do I enter our company tax ID?",
            "Can you reissue an old invoice with our company address?",
        ],
        """\
Add your VAT or GST number in **Settings → Billing → Tax details**. It will appear on all future
invoices. Past invoices can't be reissued, except for Enterprise customers through their account
manager.""",
    ),
    "trial-extension": (
        [
            "Can I extend my free trial?",
            "Our trial ends tomorrow, can we get more time?",
            "How long is the free trial?",
            "Can you give us one more week of trial?",
        ],
        """\
New workspaces get a 14-day free trial of Business features. A trial can be extended once by 7
days. I can open a support ticket to request the extension if you'd like; please include your
workspace URL.""",
    ),
    "nonprofit-discount": (
        [
            "Do you have a nonprofit discount?",
            "Is there an education discount for schools?",
            "Do you offer discount codes?",
            "We are a charity, do we get a cheaper price?",
        ],
        """\
Yes. Nonprofits and accredited schools get 50% off the Team and Business plans after
verification. Apply at **acmecloud.com/nonprofit**. We don't have any other public discount
codes.""",
    ),
    "lost-2fa-device": (
        [
            "I lost my phone and can't log in because of 2FA",
            "I got a new phone and my authenticator codes are gone",
            "Locked out, 2FA device lost",
            "Can you turn off two-factor for my account?",
        ],
        """\
You can sign in with one of the 10 backup codes you saved when you set up 2FA, then set up your
new phone in **Profile → Security → Two-factor authentication**.

If you don't have your backup codes, email support from your account address. We'll verify your
identity, which takes one to two business days. For your security I can't turn off 2FA from this
chat.""",
    ),
    "custom-domain": (
        [
            "How do I set up a custom domain?",
            "Can I use [[domain]] for our public pages?",
            "Our custom domain is not verifying",
            "How long does custom domain verification take?",
        ],
        """\
Custom domains are available on Team and above:

1. Go to **Settings → Workspace → Custom domain** and enter the domain.
2. Add the CNAME record shown there at your DNS provider.

Verification and the TLS certificate usually take less than an hour. If it's still pending after
that, check that the CNAME record points exactly to the value shown in Acme Cloud.""",
    ),
    "rotate-api-key": (
        [
            "How do I rotate my API key?",
            "I think our API key leaked, what should I do?",
            "How do I create a new API key?",
            "Where do I revoke an API key?",
        ],
        """\
API keys are managed in **Settings → Developers → API keys**. To rotate one:

1. Click **Create key** and copy the new key (it's shown only once).
2. Update your integrations to use the new key.
3. Revoke the old key from the same page.

If you think a key leaked, revoke it right away. Please never paste API keys into this chat.""",
    ),
    "failed-payment": (
        [
            "Why did my payment fail?",
            "Our card was declined, will we lose access?",
            "My workspace is read-only because of a payment issue",
            "We got an email saying the payment for [[month]] failed",
        ],
        """\
When a payment fails we retry the card three times over 7 days and email your billing contact
each time. If it still hasn't gone through, the workspace becomes read-only 14 days after the
first failed attempt. Nothing is deleted, and full access comes back as soon as a payment succeeds.

To fix it, update your card in **Settings → Billing → Payment method**; we'll retry right away.""",
    ),
}

FAQ_SLOTS: dict[str, list[str]] = {
    "email": [
        "maria.lopez@northwind.io", "j.chen@brightpath.co", "sam@fernhill.dev",
        "priya.nair@lumenhq.com", "tom.becker@quarry.app", "ana.silva@tidewater.org",
        "li.wei@harborlabs.com", "finance@oakridge-studio.com", "kofi.mensah@greenleaf.net",
    ],
    "invoice": [f"INV-{n}" for n in (20931, 20877, 21456, 19803, 22140, 21012, 20399, 22518)],
    "seats": ["3", "5", "two", "10", "12", "20"],
    "plan": ["Business", "Team", "Enterprise", "Starter"],
    "month": ["September", "August", "July", "last month", "Q3"],
    "domain": ["docs.northwind.io", "help.fernhill.dev", "kb.brightpath.co", "status.lumenhq.com"],
}

# Optional decoration of a question (so that not every asker uses the exact same words).
FAQ_PREFIXES = ["Hi, ", "Hello! ", "hey ", "Quick question: ", "Hi there, ", "Hello, ", "Hi! "]
FAQ_SUFFIXES = [" Thanks!", " thx", " Thank you.", " Thanks in advance.", " Please help."]

FAQ_OPENERS = ["", "", "", "", "Sure! ", "Happy to help. ", "Good question. "]
FAQ_CLOSERS = ["", "", "", "\n\nIs there anything else I can help with?"]

TRIAGE_PROMPT = (
    "Classify the following support ticket into one of: billing, bug, account, feature-request, "
    "other. Answer with the category only.\n\nTicket: [[ticket]]"
)

# Ticket templates by true category.
TRIAGE_TICKETS: dict[str, list[str]] = {
    "billing": [
        "We were charged twice for [[month]] on our [[plan]] plan. Can you refund the duplicate?",
        "Invoice [[invoice]] shows [[seats]] seats but we only have [[seats2]] active users.",
        "Our card was declined and now the workspace is read-only. We updated the card, please "
        "restore access.",
        "Please switch us from monthly to annual billing and tell me the new price.",
        "Why did our bill go up this month? Nobody on the team added users.",
        "We need invoices addressed to our parent company, [[company]]. How do we change that?",
    ],
    "bug": [
        "The task board doesn't load in [[browser]], it just shows a spinner forever.",
        "Uploading files bigger than [[size]] fails with 'Network error' every time.",
        "Automations stopped running since yesterday around [[time]]. Nothing changed on our side.",
        "The API returns 500 on GET /v1/projects for our workspace since this morning.",
        "Search results show files that were deleted weeks ago.",
        "When I export the board to CSV the due dates are shifted by one day.",
        "Notifications for mentions arrive twice on the [[os]] app.",
    ],
    "account": [
        "I can't log in, the password reset email never arrives. My email is [[email]].",
        "Please transfer workspace ownership to [[email]], our previous owner left.",
        "I lost my phone with the authenticator app and I'm locked out.",
        "How do I change the email address on my account to [[email]]?",
        "Our SSO login with Okta fails with 'invalid audience'.",
        "Please remove [[name]] from our workspace, they left the company last week.",
    ],
    "feature-request": [
        "It would be great to have a dark mode in the [[os]] app.",
        "Can you add Gantt charts to the task board? We'd use it for every project.",
        "Please support webhooks for file uploads, we want to trigger our own pipeline.",
        "We'd love a way to set recurring tasks that repeat every second Tuesday.",
        "Could guests get comment-only access instead of view-only?",
        "Please add an export of the audit log to CSV.",
    ],
    "other": [
        "Do you have a partner program for agencies?",
        "Who should I talk to about a security questionnaire for our procurement team?",
        "Thanks for the quick fix yesterday, everything works now!",
        "Are you attending [[event]] this year? We'd like to meet.",
        "Is there a public roadmap somewhere?",
    ],
}

TRIAGE_SLOTS: dict[str, list[str]] = {
    "month": ["September", "October", "August"],
    "plan": ["Team", "Business"],
    "invoice": ["INV-20931", "INV-21456", "INV-22140", "INV-21988", "INV-22305"],
    "seats": ["14", "22", "9", "31"],
    "seats2": ["11", "18", "7", "25"],
    "company": ["Northwind Holdings GmbH", "Brightpath Group Ltd", "Fernhill Partners LLC",
                "Quarry Apps Inc.", "Tidewater Foundation"],
    "browser": ["Safari 18", "Firefox", "Chrome on Windows", "Edge"],
    "size": ["2 GB", "500 MB", "1 GB"],
    "time": ["3pm CET", "09:40 UTC", "noon Pacific", "late last night"],
    "os": ["iOS", "Android", "macOS", "Windows"],
    "email": ["dana.k@northwind.io", "r.ito@quarry.app", "admin@tidewater.org",
              "m.ross@lumenhq.com"],
    "name": ["Jordan Price", "Elena Petrova", "Marcus Lee", "Aisha Bello"],
    "event": ["SaaStr", "Web Summit", "KubeCon"],
    "ws": ["northwind", "brightpath", "fernhill", "lumenhq", "quarry", "tidewater", "oakridge",
           "harborlabs", "greenleaf", "bluefin", "cedarworks", "moonbeam"],
    "first": ["Dana", "Ravi", "Mia", "Tom", "Aylin", "Chris", "Yuki", "Pedro", "Sara", "Ben",
              "Noor", "Felix", "Ines", "Kwame", "Lena", "Marco", "Olga", "Sean", "Tara", "Victor"],
    "last": ["Kim", "Patel", "Novak", "Garcia", "Okafor", "Schmidt", "Rossi", "Tanaka", "Walsh"],
}

# A ticket = optional greeting + body + optional context + optional sign-off.
TRIAGE_GREETINGS = ["", "", "Hi,", "Hello,", "Hi team,", "Hey,", "Good morning,", "Hi support,"]
TRIAGE_CONTEXT = [
    "", "", "", "We're on the [[plan]] plan.", "This is blocking our team.",
    "It started after the last update.", "Our workspace is [[ws]].acmecloud.com.",
    "Please get back to me today if possible.", "I already tried logging out and back in.",
    "Screenshot attached.", "This is the second time I'm writing about this.",
    "We have [[seats]] people on the account.", "Happy to jump on a call if that helps.",
]
TRIAGE_SIGNOFFS = [
    "", "", "Thanks", "Thanks, [[first]]", "Best, [[first]]", "Regards,\n[[first]] [[last]]",
    "- [[first]]", "Thank you!\n[[first]] [[last]], [[company]]",
]

# Occasional chatty answers that overrun the small max_tokens (finish_reason "length").
TRIAGE_VERBOSE = [
    "[[label]]\n\nThe ticket is about [[label]] because the customer describes",
    "Category: [[label]]. The customer mentions a problem that relates to",
    "This ticket should be classified as [[label]], since the main request is",
]
