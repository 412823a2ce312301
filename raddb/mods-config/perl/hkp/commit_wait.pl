#  hkp-radius: the post-auth half of the HKS's replay commit (docs/hks.md "Replay
#  state durability"). The hkp_hks module (rlm_python3, which runs one call at a
#  time) stages an accept's replay record and sets control:HKP-Commit-Wait to
#  "<fd>:<ticket>"; its committer thread writes the ticket and the outcome to that
#  pipe of this worker thread once the group holding the record is fsynced. This
#  waits for it here, outside rlm_python3, so that other requests are decided
#  meanwhile and share the next fsync. Only then does hkp_hks_sign_reply put the
#  key (control:HKP-Staged-Key) into the reply; a failed commit turns the accept
#  into a reject (Post-Auth-Type REJECT) without it.
use strict;
use warnings;
use POSIX ();

use constant {
    RLM_MODULE_REJECT => 0,
    RLM_MODULE_OK     => 2,
    RLM_MODULE_NOOP   => 7,
    NOTICE_LENGTH     => 9,    # 8-octet ticket (big-endian), 1 octet: 1 stored, 0 not
};

our (%RAD_CONFIG, %RAD_CHECK);

sub post_auth {
    my $wait = $RAD_CONFIG{'HKP-Commit-Wait'};
    return RLM_MODULE_NOOP unless defined $wait;
    #  Gone from the control list (rlm_perl rebuilds it from %RAD_CHECK), so that a
    #  reject's second pass through hkp_hks_sign_reply does not wait again.
    delete $RAD_CHECK{'HKP-Commit-Wait'};
    my ($fd, $ticket) = $wait =~ /^(\d+):(\d+)$/ or return RLM_MODULE_REJECT;
    while (1) {
        my $notice = '';
        my $length = POSIX::read($fd, $notice, NOTICE_LENGTH);
        return RLM_MODULE_REJECT unless defined $length && $length == NOTICE_LENGTH;
        my ($done, $stored) = unpack('Q>C', $notice);
        next if $done < $ticket;    # an earlier request's, whose wait did not run
        return ($done == $ticket && $stored) ? RLM_MODULE_OK : RLM_MODULE_REJECT;
    }
}

1;
