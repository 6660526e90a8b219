import { useState } from 'react';
import { Button } from '@/components/ui/button';

// Copies the whole markdown of a reply that was streamed as several messages.
export default function CopyReply() {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    await navigator.clipboard.writeText(props.text);
    setCopied(true);
    setTimeout(() => setCopied(false), 2000);
  };
  return (
    <Button id="copy-whole-reply" variant="ghost" size="sm" onClick={copy}>
      {copied ? 'Copied' : 'Copy whole reply'}
    </Button>
  );
}
