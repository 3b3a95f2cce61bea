"""Invoices: a kind on the default queue."""

from pydantic import BaseModel, Field

from conveyor import JobContext, job_kind


class SendInvoice(BaseModel):
    invoice_id: int = Field(gt=0)
    email_to: str = Field(min_length=3, max_length=320)


@job_kind("invoices.send", input=SendInvoice)
async def send(ctx: JobContext, input: SendInvoice) -> dict[str, str]:
    """Send one invoice by e-mail."""
    await ctx.log(f"sending invoice {input.invoice_id} to {input.email_to}")
    return {"sentTo": input.email_to}
