import { useState } from 'react';
import { Button } from '@/components/ui/button';

// Under a reply: live progress while it streams, a summary when it ends, and for a reply
// streamed as several messages, one button that copies all of its markdown.
export default function ReplyFooter() {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    await navigator.clipboard.writeText(props.copyText);
    setCopied(true);
    setTimeout(() => setCopied(false), 2000);
  };
  return (
    <div className="smart-agent-footer flex items-center gap-2 text-xs text-muted-foreground">
      {props.text ? <span id="reply-stats" data-done={props.done ? 'yes' : 'no'}>{props.text}</span> : null}
      {props.copyText ? (
        <Button id="copy-whole-reply" variant="ghost" size="sm" onClick={copy}>
          {copied ? 'Copied' : 'Copy whole reply'}
        </Button>
      ) : null}
    </div>
  );
}
